//! Generated Rust for every partnerhub API and event (`proto/`), and the
//! encoded descriptor set that reflection serves and the access rules are
//! read from.

#![allow(clippy::all, missing_docs)]

/// The `partnerhub.*` packages.
pub mod partnerhub {
    /// Access rules (method options).
    pub mod auth {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/partnerhub.auth.v1.rs"));
        }
    }
    /// Identity: accounts, users, roles, tokens.
    pub mod identity {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/partnerhub.identity.v1.rs"));
        }
    }
    /// Organization profile.
    pub mod profile {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/partnerhub.profile.v1.rs"));
        }
    }
    /// Company verification.
    pub mod verification {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/partnerhub.verification.v1.rs"));
        }
    }
    /// Notifications.
    pub mod notification {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/partnerhub.notification.v1.rs"));
        }
    }
    /// Account merge.
    pub mod merge {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/partnerhub.merge.v1.rs"));
        }
    }
    /// Events of the external billing system.
    pub mod billing {
        /// Version 1.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/partnerhub.billing.v1.rs"));
        }
    }
}

pub use partnerhub::{billing, identity, merge, notification, profile, verification};

/// The encoded `FileDescriptorSet` of every partnerhub proto file and its
/// imports.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/partnerhub_descriptor.bin"));
