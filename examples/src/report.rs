//! How the binaries report a failure: the error and each of its causes once, and the exit
//! status engines and scripts expect.

use std::error::Error;

/// The error's own message and then each cause's, in order, each said once: a cause whose
/// text the previous message already holds (errors of other crates that print their source as
/// well as returning it; compared without case or Rust's " (os error N)") is left out, and
/// nothing follows a failed exec of the container's command, whose message is runc's complete
/// words (engines match them).
pub fn causes(e: &(dyn Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = vec![e.to_string()];
    if exec_error(e).is_some() {
        return out;
    }
    let mut next = e.source();
    while let Some(c) = next {
        let text = c.to_string();
        let said = out
            .last()
            .is_some_and(|l| normalize(l).contains(&normalize(&text)));
        if !said && !text.is_empty() {
            out.push(text);
        }
        next = c.source();
    }
    out
}

/// Lower case, without Rust's " (os error N)" suffix.
fn normalize(s: &str) -> String {
    let s = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    };
    s.to_lowercase()
}

/// The OS error of a failed exec of the container's command, if that is what `e` is.
fn exec_error<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a std::io::Error> {
    e.downcast_ref::<oci_runtime::Error>()
        .and_then(oci_runtime::Error::exec_error)
        .or_else(|| {
            e.downcast_ref::<oci_sandbox::Error>()
                .and_then(oci_sandbox::Error::exec_error)
        })
}

/// The chain on one line, `a: b: c`, for runc-style log lines that engines read.
pub fn one_line(e: &(dyn Error + 'static)) -> String {
    causes(e).join(": ")
}

/// The chain as printed on stderr: `PROG: error`, then one `  caused by: …` line per cause.
pub fn lines(prog: &str, e: &(dyn Error + 'static)) -> String {
    let mut c = causes(e).into_iter();
    let mut out = format!("{prog}: {}", c.next().unwrap_or_default());
    for cause in c {
        out.push_str("\n  caused by: ");
        out.push_str(&cause);
    }
    out
}

/// podman's and docker's exit statuses for a `run` or `exec` that failed before the
/// container's command ran: 127 when the command was not found, 126 when it was found but
/// could not be invoked (permission denied, not an executable), 125 for every other failure of
/// the tool itself.
pub fn exit_status(e: &(dyn Error + 'static)) -> u8 {
    match exec_error(e).map(std::io::Error::raw_os_error) {
        Some(Some(libc::ENOENT)) => 127,
        Some(_) => 126,
        None => 125,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("opening {0}: {1}")]
    struct Embeds(&'static str, #[source] std::io::Error);

    #[test]
    fn a_cause_is_said_once() {
        let e = oci_image::Error::from_io("/x/index.json", std::io::Error::from_raw_os_error(2));
        let text = lines("ocibox", &e);
        assert_eq!(
            text,
            "ocibox: /x/index.json\n  caused by: No such file or directory (os error 2)"
        );
        // Another crate's error that prints its source too: not repeated.
        let e = Embeds("/y", std::io::Error::from_raw_os_error(2));
        assert_eq!(
            causes(&e),
            ["opening /y: No such file or directory (os error 2)"]
        );
        assert_eq!(one_line(&e).matches("No such file").count(), 1);
    }

    #[test]
    fn an_exec_failure_is_runcs_one_message() {
        let e = oci_runtime::Error::Sandbox(oci_sandbox::Error::Executable {
            name: "nope".into(),
            searched: true,
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        });
        assert_eq!(
            one_line(&e),
            "exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(exit_status(&e), 127);
        let e = oci_sandbox::Error::Execve {
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(exit_status(&e), 126);
        // Another crate's message that ends with its cause, in its own case.
        #[derive(Debug, thiserror::Error)]
        #[error("open /z: permission denied")]
        struct Lower(#[source] std::io::Error);
        let e = Lower(std::io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(causes(&e), ["open /z: permission denied"]);
    }

    #[test]
    fn exit_statuses() {
        let e: Box<dyn Error> = "anything".into();
        assert_eq!(exit_status(e.as_ref()), 125);
    }
}
