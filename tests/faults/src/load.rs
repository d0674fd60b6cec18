//! The load: enrolled companies whose legal name is changed over and over
//! (`UpdateLegalProfile`). Every accepted change writes one
//! `LegalProfileChanged` event in profile's outbox, which verification (a
//! case per event) and notification (its account projection) consume.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use partnerhub_proto::identity::v1::SignUpRequest;
use partnerhub_proto::identity::v1::auth_service_client::AuthServiceClient;
use partnerhub_proto::profile::v1::enrollment_service_client::EnrollmentServiceClient;
use partnerhub_proto::profile::v1::legal_profile_service_client::LegalProfileServiceClient;
use partnerhub_proto::profile::v1::{
    Address, Contact, EnrollRequest, GetLegalProfileRequest, LegalProfile, ProgramKind,
    UpdateLegalProfileRequest,
};
use partnerhub_testkit::bearer;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::Deployment;

/// An enrolled company the load writes to.
#[derive(Debug, Clone)]
pub struct Company {
    /// Its place in the list.
    pub index: usize,
    /// `accounts/{id}`.
    pub account: String,
    /// The account id.
    pub account_id: uuid::Uuid,
    /// Its founder's access token.
    pub token: String,
}

impl Company {
    /// `accounts/{id}/legalProfile`.
    pub fn legal_profile(&self) -> String {
        format!("{}/legalProfile", self.account)
    }
}

/// Signs up and enrolls `n` companies (in the Partner program, whose legal
/// name may change at any time).
pub async fn companies(deployment: &Deployment, n: usize) -> anyhow::Result<Vec<Company>> {
    let identity = deployment.channel("identity")?;
    let profile = deployment.channel("profile")?;
    // A few at a time: sign-up hashes a password, a burst of them waits on
    // identity's pool.
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(4) {
        let mut tasks = JoinSet::new();
        for &i in chunk {
            let identity = identity.clone();
            let profile = profile.clone();
            tasks.spawn(async move { enroll(identity, profile, i).await });
        }
        while let Some(joined) = tasks.join_next().await {
            out.push(joined??);
        }
    }
    out.sort_by_key(|c| c.index);
    Ok(out)
}

async fn enroll(identity: Channel, profile: Channel, i: usize) -> anyhow::Result<Company> {
    let email = format!("founder.{}@faultline{i}.com", partnerhub_testkit::unique());
    let session = AuthServiceClient::new(identity)
        .sign_up(SignUpRequest {
            email: email.clone(),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            password: partnerhub_testkit::clients::FOUNDER_PASSWORD.into(),
            account_display_name: format!("Faultline {i}"),
            locale: "en-US".into(),
        })
        .await?
        .into_inner();
    let token = session.access_token.unwrap_or_default().token;
    let account = session.account.unwrap_or_default().name;
    EnrollmentServiceClient::new(profile)
        .enroll(bearer(
            &token,
            EnrollRequest {
                parent: account.clone(),
                legal_profile: Some(LegalProfile {
                    legal_name: format!("Faultline {i} SAS"),
                    address: Some(Address {
                        line1: "1 Rue de Rivoli".into(),
                        city: "Paris".into(),
                        postal_code: "75001".into(),
                        country: "FR".into(),
                        ..Address::default()
                    }),
                    primary_contact: Some(Contact {
                        given_name: "Ada".into(),
                        family_name: "Lovelace".into(),
                        email,
                        ..Contact::default()
                    }),
                    ..LegalProfile::default()
                }),
                program: ProgramKind::Partner.into(),
                accept_agreement: true,
                ..EnrollRequest::default()
            },
        )?)
        .await?;
    let account_id = account.rsplit('/').next().unwrap_or_default().parse()?;
    Ok(Company {
        index: i,
        account,
        account_id,
        token,
    })
}

/// Changes `company`'s legal name to `name`.
pub async fn rename(
    channel: Channel,
    company: &Company,
    name: String,
) -> Result<(), tonic::Status> {
    let request = bearer(
        &company.token,
        UpdateLegalProfileRequest {
            legal_profile: Some(LegalProfile {
                name: company.legal_profile(),
                legal_name: name,
                ..LegalProfile::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["legal_name".into()],
            }),
        },
    )
    .map_err(|e| tonic::Status::internal(e.to_string()))?;
    LegalProfileServiceClient::new(channel)
        .update_legal_profile(request)
        .await
        .map(drop)
}

/// Reads `company`'s legal profile.
pub async fn read(channel: Channel, company: &Company) -> Result<(), tonic::Status> {
    let request = bearer(
        &company.token,
        GetLegalProfileRequest {
            name: company.legal_profile(),
        },
    )
    .map_err(|e| tonic::Status::internal(e.to_string()))?;
    LegalProfileServiceClient::new(channel)
        .get_legal_profile(request)
        .await
        .map(drop)
}

/// One accepted write.
#[derive(Debug, Clone)]
pub struct Write {
    /// Index of the company.
    pub company: usize,
    /// The legal name written.
    pub name: String,
}

/// One refused or failed write.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Index of the company.
    pub company: usize,
    /// The legal name it tried to write.
    pub name: String,
    /// The status code.
    pub code: tonic::Code,
    /// The status message.
    pub message: String,
}

/// What a write stream did.
#[derive(Debug, Default)]
pub struct WriteLog {
    /// Acknowledged writes, per company in the order they were made.
    pub acked: Vec<Write>,
    /// Failed writes.
    pub failed: Vec<Failure>,
}

impl WriteLog {
    /// Acknowledged writes of company `i`.
    pub fn acked_for(&self, i: usize) -> usize {
        self.acked.iter().filter(|w| w.company == i).count()
    }
}

/// A running stream of writes: one writer per company, each changing its
/// company's legal name one call after the other, `total` writes in all.
#[derive(Debug)]
pub struct WriteStream {
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<(WriteLog, Instant)>,
    started: Instant,
}

impl WriteStream {
    /// Starts `total` writes over `companies` against `channel`; after a
    /// failure a writer waits `pause` before its next write.
    pub fn start(channel: Channel, companies: &[Company], total: usize, pause: Duration) -> Self {
        Self::paced(channel, companies, total, pause, Duration::ZERO)
    }

    /// Like [`WriteStream::start`], each writer starting a call at most
    /// every `every` (so the stream lasts long enough for slow faults).
    pub fn paced(
        channel: Channel,
        companies: &[Company],
        total: usize,
        pause: Duration,
        every: Duration,
    ) -> Self {
        let issued = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for (i, company) in companies.iter().cloned().enumerate() {
            let (channel, issued, done, stop) =
                (channel.clone(), issued.clone(), done.clone(), stop.clone());
            tasks.spawn(async move {
                let mut log = WriteLog::default();
                let mut pace = tokio::time::interval(every.max(Duration::from_micros(1)));
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::SeqCst) {
                    pace.tick().await;
                    let n = issued.fetch_add(1, Ordering::SeqCst);
                    if n >= total {
                        break;
                    }
                    let name = format!("Faultline {i} write {n}");
                    match rename(channel.clone(), &company, name.clone()).await {
                        Ok(()) => log.acked.push(Write { company: i, name }),
                        Err(status) => {
                            log.failed.push(Failure {
                                company: i,
                                name,
                                code: status.code(),
                                message: status.message().to_owned(),
                            });
                            tokio::time::sleep(pause).await;
                        }
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
                (log, Instant::now())
            });
        }
        Self {
            done,
            stop,
            tasks,
            started: Instant::now(),
        }
    }

    /// The counter of finished writes.
    pub fn counter(&self) -> Arc<AtomicUsize> {
        self.done.clone()
    }

    /// Writes finished so far (acknowledged or failed).
    pub fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` writes finished.
    pub async fn wait_done(&self, n: usize, timeout: Duration) -> anyhow::Result<()> {
        crate::wait_for(&format!("{n} writes never finished"), timeout, || async {
            (self.done() >= n).then_some(())
        })
        .await
    }

    /// Issues no new write from now on (calls in flight go on).
    pub fn stop_issuing(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Waits for every writer; returns the log and how long the writes
    /// took (until the last one finished).
    pub async fn finish(mut self) -> anyhow::Result<(WriteLog, Duration)> {
        let mut log = WriteLog::default();
        let mut last = self.started;
        while let Some(joined) = self.tasks.join_next().await {
            let (part, ended) = joined?;
            log.acked.extend(part.acked);
            log.failed.extend(part.failed);
            last = last.max(ended);
        }
        Ok((log, last - self.started))
    }
}
