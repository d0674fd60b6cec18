//! The merge invitation's state machine, without I/O: which action may
//! happen in which state, by which side, and which states still hold an
//! account's one open merge.
//!
//! ```text
//! PENDING ──accept──▶ ACCEPTED ──confirm──▶ CONFIRMED ──start──▶ IN_PROGRESS ──complete──▶ COMPLETED
//!    │ reject/cancel/expire  │ cancel/expire                          │ fail
//!    ▼                       ▼                                        ▼
//! REJECTED / CANCELLED / EXPIRED                                   FAILED ──retry──▶ CONFIRMED
//! ```

/// State of a merge invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sent, waiting for the invitee.
    Pending,
    /// Accepted by the invitee.
    Accepted,
    /// Confirmed by the initiator; the saga will run.
    Confirmed,
    /// The saga is running.
    InProgress,
    /// Done.
    Completed,
    /// Refused by the invitee.
    Rejected,
    /// Withdrawn by the initiator.
    Cancelled,
    /// Not answered in time.
    Expired,
    /// The saga failed; it may be retried.
    Failed,
}

/// What can happen to an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The invitee accepts.
    Accept,
    /// The invitee refuses.
    Reject,
    /// The initiator withdraws (before confirming).
    Cancel,
    /// The initiator confirms, acknowledging the merge is irreversible.
    Confirm,
    /// The saga starts.
    Start,
    /// The saga finished.
    Complete,
    /// The saga gave up.
    Fail,
    /// The initiator retries a failed merge.
    Retry,
    /// Nobody answered in time.
    Expire,
}

/// Who may take an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The inviting account's Account admin.
    Initiator,
    /// The invited account's Account admin.
    Invitee,
    /// The merge service itself (saga, expiry).
    System,
}

/// A refused transition, naming the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action:?} a merge invitation that is {current:?}")]
pub struct IllegalTransition {
    /// The state the invitation is in.
    pub current: State,
    /// What was tried.
    pub action: Action,
}

impl State {
    /// Stored and API name (`PENDING`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Accepted => "ACCEPTED",
            Self::Confirmed => "CONFIRMED",
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
            Self::Failed => "FAILED",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Accepted,
            Self::Confirmed,
            Self::InProgress,
            Self::Completed,
            Self::Rejected,
            Self::Cancelled,
            Self::Expired,
            Self::Failed,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    /// Whether the invitation still holds its accounts' one open merge.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::Accepted | Self::Confirmed | Self::InProgress | Self::Failed
        )
    }

    /// Whether lists show it under "history" rather than "current".
    pub fn is_history(self) -> bool {
        !self.is_open()
    }
}

impl Action {
    /// Who may take the action.
    pub fn side(self) -> Side {
        match self {
            Self::Accept | Self::Reject => Side::Invitee,
            Self::Cancel | Self::Confirm | Self::Retry => Side::Initiator,
            Self::Start | Self::Complete | Self::Fail | Self::Expire => Side::System,
        }
    }
}

/// The state after `action`, or the refusal naming the current state.
pub fn transition(current: State, action: Action) -> Result<State, IllegalTransition> {
    use Action as A;
    use State as S;
    let next = match (current, action) {
        (S::Pending, A::Accept) => S::Accepted,
        (S::Pending, A::Reject) => S::Rejected,
        (S::Pending | S::Accepted, A::Cancel) => S::Cancelled,
        (S::Pending | S::Accepted, A::Expire) => S::Expired,
        (S::Accepted, A::Confirm) => S::Confirmed,
        (S::Confirmed, A::Start) => S::InProgress,
        // A restart resumes a saga that was running.
        (S::InProgress, A::Start) => S::InProgress,
        (S::InProgress, A::Complete) => S::Completed,
        (S::Confirmed | S::InProgress, A::Fail) => S::Failed,
        (S::Failed, A::Retry) => S::Confirmed,
        _ => return Err(IllegalTransition { current, action }),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_goes_all_the_way() {
        let mut state = State::Pending;
        for action in [
            Action::Accept,
            Action::Confirm,
            Action::Start,
            Action::Complete,
        ] {
            state = transition(state, action).unwrap_or(State::Failed);
        }
        assert_eq!(state, State::Completed);
    }

    #[test]
    fn illegal_transitions_name_the_current_state() {
        let err = transition(State::Pending, Action::Confirm).err();
        assert_eq!(err.map(|e| e.current), Some(State::Pending));
        assert!(
            transition(State::Confirmed, Action::Cancel).is_err(),
            "no cancel after confirmation"
        );
        assert!(transition(State::Completed, Action::Retry).is_err());
        assert!(transition(State::Rejected, Action::Accept).is_err());
        assert!(transition(State::Expired, Action::Accept).is_err());
        assert_eq!(
            transition(State::Failed, Action::Retry),
            Ok(State::Confirmed)
        );
    }

    #[test]
    fn every_final_state_refuses_every_action() {
        let finals = [
            State::Completed,
            State::Rejected,
            State::Cancelled,
            State::Expired,
        ];
        let actions = [
            Action::Accept,
            Action::Reject,
            Action::Cancel,
            Action::Confirm,
            Action::Start,
            Action::Complete,
            Action::Fail,
            Action::Retry,
            Action::Expire,
        ];
        for state in finals {
            assert!(state.is_history());
            for action in actions {
                assert!(
                    transition(state, action).is_err(),
                    "{state:?} accepted {action:?}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip_and_sides_are_fixed() {
        for state in [State::Pending, State::InProgress, State::Failed] {
            assert_eq!(State::parse(state.as_str()), Some(state));
            assert!(state.is_open());
        }
        assert_eq!(Action::Accept.side(), Side::Invitee);
        assert_eq!(Action::Confirm.side(), Side::Initiator);
        assert_eq!(Action::Expire.side(), Side::System);
    }
}
