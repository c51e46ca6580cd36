//! Roles and what they allow, and the caller a request acts as.

use std::fmt;
use std::str::FromStr;

use crate::job::DEFAULT_TENANT;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read its tenant's jobs, timelines and artifacts.
    Read,
    /// What `read` may, and submit, cancel and retry its tenant's jobs.
    Submit,
    /// Everything, across every tenant: quotas, queue statistics.
    Admin,
}

/// What a request does, as far as permissions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Reads jobs.
    Read,
    /// Submits or changes jobs.
    Write,
    /// Operates the service (every tenant, quotas, queue).
    Administer,
}

impl Role {
    /// Every role, least first.
    pub const ALL: &'static [Role] = &[Role::Read, Role::Submit, Role::Admin];

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Submit => "submit",
            Role::Admin => "admin",
        }
    }

    /// Whether the role allows `action`.
    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::Read => true,
            Action::Write => self >= Role::Submit,
            Action::Administer => self == Role::Admin,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        Role::ALL
            .iter()
            .copied()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| format!("unknown role {text:?}; expected read, submit or admin"))
    }
}

/// Which jobs a request may see and change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// One tenant's.
    Tenant(&'a str),
    /// Every tenant's (admin).
    All,
}

impl Scope<'_> {
    /// Whether a job of `tenant` is in this scope.
    pub fn includes(self, tenant: &str) -> bool {
        match self {
            Scope::Tenant(own) => own == tenant,
            Scope::All => true,
        }
    }
}

/// Who a request acts as: its tenant and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The tenant jobs are submitted to and read from.
    pub tenant: String,
    /// What the caller may do.
    pub role: Role,
    /// The id of the key it presented (none on an API without keys).
    pub key: Option<String>,
}

impl Caller {
    /// The caller of an API without keys (`AUTH=off`, or `dev` on loopback): an admin of
    /// the default tenant.
    pub fn open() -> Caller {
        Caller {
            tenant: DEFAULT_TENANT.to_owned(),
            role: Role::Admin,
            key: None,
        }
    }

    /// The jobs this caller reaches: an admin reaches every tenant's.
    pub fn scope(&self) -> Scope<'_> {
        match self.role {
            Role::Admin => Scope::All,
            _ => Scope::Tenant(&self.tenant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_they_say() {
        assert!(Role::Read.allows(Action::Read));
        assert!(!Role::Read.allows(Action::Write));
        assert!(Role::Submit.allows(Action::Write));
        assert!(!Role::Submit.allows(Action::Administer));
        assert!(Role::Admin.allows(Action::Administer));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
