//! The open-file limit. Every connection a node holds is a file descriptor, and the common soft
//! limit of 1,024 is exhausted by a thousand idle connections long before any connection cap
//! applies; the hard limit is what the administrator granted, so a server raises its soft limit
//! to it at start.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The soft open-file limit before and after [`raise_to_hard`]; `None` is unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: Option<u64>,
    pub now: Option<u64>,
    pub hard: Option<u64>,
}

/// Raises this process's soft open-file limit (RLIMIT_NOFILE) to its hard limit. An unlimited
/// hard limit is left alone: Linux refuses an unlimited soft one, and the soft one suffices there.
pub fn raise_to_hard() -> std::io::Result<OpenFiles> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let mut limits = OpenFiles {
        before: current,
        now: current,
        hard: maximum,
    };
    if let Some(hard) = maximum {
        if current.is_some_and(|soft| soft < hard) {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum,
                },
            )?;
            limits.now = getrlimit(Resource::Nofile).current;
        }
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soft_limit_below_the_hard_limit_is_raised_to_it() {
        let Rlimit { maximum, .. } = getrlimit(Resource::Nofile);
        let Some(hard) = maximum else {
            return; // Unlimited: nothing to raise to.
        };
        // Start from a lowered soft limit (nextest runs each test in its own process).
        let low = (hard / 2).max(64).min(hard);
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(low),
                maximum,
            },
        )
        .unwrap();
        let limits = raise_to_hard().unwrap();
        assert_eq!(limits.before, Some(low));
        assert_eq!(limits.now, Some(hard));
        assert_eq!(getrlimit(Resource::Nofile).current, Some(hard));
    }
}
