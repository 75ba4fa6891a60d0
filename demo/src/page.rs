//! The HTML page of the axum demo.

use std::fmt::Write;

/// What the home page shows.
pub(crate) struct Home<'a> {
    pub user: Option<&'a str>,
    pub counter: i64,
    pub ttl: Option<std::time::Duration>,
    pub backend: &'a str,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn render(home: &Home<'_>) -> String {
    let mut body = String::new();
    match home.user {
        Some(user) => {
            let _ = write!(
                body,
                r#"<p>Logged in as <strong id="user">{}</strong>.</p>
<p>Counter: <strong id="counter">{}</strong></p>
<form method="post" action="/increment"><button>Increment</button></form>
<form method="post" action="/logout"><button>Log out</button></form>"#,
                escape(user),
                home.counter
            );
        }
        None => body.push_str(
            r#"<p>Nobody is logged in.</p>
<form method="post" action="/login"><label>User name <input name="user" maxlength="64" required autofocus></label> <button>Log in</button></form>
<p><small>No password: it is a demo.</small></p>"#,
        ),
    }
    let ttl = match home.ttl {
        Some(ttl) => format!("{} s", ttl.as_secs()),
        None => "no session".into(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redis-sessions demo</title>
<style>body{{font:16px system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1rem;margin:.25rem 0}} dl{{display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem;color:#555}}</style>
</head><body>
<h1>redis-sessions demo</h1>
{body}
<hr><dl><dt>Session TTL</dt><dd id="ttl">{ttl}</dd><dt>Storage</dt><dd id="backend">{}</dd></dl>
</body></html>"#,
        escape(home.backend)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_user_names() {
        let html = render(&Home {
            user: Some("<script>x</script>"),
            counter: 1,
            ttl: None,
            backend: "memory",
        });
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
    }
}
