//! Error messages with their causes, as the CLI prints them and the HTTP service logs them.

use std::error::Error;

/// An error's message followed by each cause in its source chain that the message so far
/// does not already include, joined by `": "`.
pub fn with_causes(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("disk on fire")
        }
    }
    impl Error for Inner {}

    #[derive(Debug)]
    struct Outer(Inner, &'static str);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_once() {
        assert_eq!(
            with_causes(&Outer(Inner, "io error")),
            "io error: disk on fire"
        );
        assert_eq!(
            with_causes(&Outer(Inner, "io error: disk on fire")),
            "io error: disk on fire"
        );
    }
}
