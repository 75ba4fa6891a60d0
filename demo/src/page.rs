//! The HTML home page of both demos.

use std::fmt::Write;
use std::time::Duration;

use crate::devices::Row;
use crate::holds::Holds;

/// What the home page shows.
pub(crate) struct Home<'a> {
    pub user: Option<&'a str>,
    pub counter: i64,
    pub backend: &'a str,
    /// The user's sessions, most recently used first (empty when nobody is logged in).
    pub sessions: &'a [Row],
    /// The current session as Redis holds it.
    pub holds: Option<&'a Holds>,
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

fn seconds(d: Option<Duration>) -> String {
    d.map_or_else(|| "none".into(), |d| format!("{} s", d.as_secs()))
}

/// "Your sessions": one row per session, "this device" marked, a "Sign out" button on every
/// other one and "Sign out everywhere else".
fn sessions(body: &mut String, rows: &[Row]) {
    body.push_str(
        r#"<section id="sessions"><h2>Your sessions</h2>
<table><thead><tr><th>Device</th><th>IP</th><th>Signed in</th><th>Last active</th><th></th></tr></thead><tbody>
"#,
    );
    for row in rows {
        let id = escape(&row.id);
        let action = if row.current {
            r#"<strong class="this-device">this device</strong>"#.to_owned()
        } else {
            format!(
                r#"<form method="post" action="/sessions/{id}/revoke"><button class="sign-out">Sign out</button></form>"#
            )
        };
        let _ = writeln!(
            body,
            r#"<tr class="session{}" data-id="{id}"><td class="device">{}</td><td class="ip">{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>"#,
            if row.current { " current" } else { "" },
            escape(row.user_agent.as_deref().unwrap_or("unknown device")),
            escape(row.ip.as_deref().unwrap_or("-")),
            escape(row.signed_in.as_deref().unwrap_or(&row.created)),
            escape(&row.last_seen),
        );
    }
    body.push_str("</tbody></table>\n");
    if rows.iter().any(|r| !r.current) {
        body.push_str(
            r#"<form method="post" action="/sessions/revoke-others"><button id="sign-out-others">Sign out everywhere else</button></form>
"#,
        );
    }
    body.push_str("</section>\n");
}

/// "What Redis holds" for the current session.
fn holds(body: &mut String, holds: &Holds) {
    let _ = write!(
        body,
        r#"<section id="holds"><h2>What Redis holds</h2>
<dl><dt>Key</dt><dd><code id="holds-key">{}</code></dd>
<dt>Remaining TTL</dt><dd id="holds-ttl">{}</dd>
<dt>Idle limit</dt><dd id="holds-idle">{} s</dd><dt>Absolute limit</dt><dd id="holds-absolute">{}</dd>
<dt>Size</dt><dd id="holds-size">{} bytes</dd></dl>
<pre id="holds-value">{}</pre></section>
"#,
        escape(&holds.key),
        seconds(holds.ttl),
        holds.limits.idle.as_secs(),
        seconds(holds.limits.absolute),
        holds.size,
        escape(&holds.shown),
    );
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
<form method="post" action="/logout"><button id="logout">Log out</button></form>
"#,
                escape(user),
                home.counter
            );
            sessions(&mut body, home.sessions);
        }
        None => body.push_str(
            r#"<p id="nobody">Nobody is logged in.</p>
<form method="post" action="/login"><label>User name <input name="user" maxlength="64" required autofocus></label> <button id="login">Log in</button></form>
<p><small>No password: it is a demo.</small></p>
"#,
        ),
    }
    if let Some(h) = home.holds {
        holds(&mut body, h);
    }
    let ttl = match home.holds {
        Some(h) => seconds(h.ttl),
        None => "no session".into(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>redis-sessions demo</title>
<style>body{{font:16px system-ui,sans-serif;max-width:48rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1rem;margin:.25rem 0}} dl{{display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem;color:#555}}
table{{border-collapse:collapse}} td,th{{padding:.2rem .5rem;text-align:left;vertical-align:top}} td form{{margin:0}}
pre{{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:.5rem}}</style>
</head><body>
<h1>redis-sessions demo</h1>
{body}<hr><dl><dt>Session TTL</dt><dd id="ttl">{ttl}</dd><dt>Storage</dt><dd id="backend">{}</dd></dl>
</body></html>"#,
        escape(home.backend)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::holds::Limits;

    fn row(id: &str, current: bool, agent: &str) -> Row {
        Row {
            id: id.into(),
            current,
            user_agent: Some(agent.into()),
            ip: Some("127.0.0.1".into()),
            signed_in: None,
            created: "2026-01-01T00:00:00Z".into(),
            last_seen: "2026-01-01T00:00:01Z".into(),
        }
    }

    #[test]
    fn escapes_user_names_agents_and_values() {
        let rows = [row("a", true, "<b>agent</b>"), row("b", false, "x")];
        let h = Holds {
            key: "sess:k".into(),
            ttl: Some(Duration::from_secs(9)),
            limits: Limits {
                idle: Duration::from_secs(60),
                absolute: None,
            },
            size: 3,
            shown: r#"{"user":"<script>"}"#.into(),
        };
        let html = render(&Home {
            user: Some("<script>x</script>"),
            counter: 1,
            backend: "memory",
            sessions: &rows,
            holds: Some(&h),
        });
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(html.contains("&lt;b&gt;agent") && !html.contains("<b>agent"));
        assert_eq!(html.matches("this device").count(), 1);
        assert_eq!(html.matches(r#"class="sign-out""#).count(), 1);
        assert!(html.contains(r#"action="/sessions/b/revoke""#));
        assert!(html.contains("Sign out everywhere else"));
        assert!(html.contains(r#"<dd id="ttl">9 s</dd>"#));
    }
}
