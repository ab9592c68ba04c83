//! The demo's one HTML page, signed in or out.

use std::fmt::Write as _;

use sealed_session::web::Flash;
use sealed_session::{Session, Verified};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::Profile;

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// A time as RFC 3339, in UTC.
#[must_use]
pub fn timestamp(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_else(|_| time.unix_timestamp().to_string())
}

fn layout(title: &str, flashes: &[Flash], body: &str) -> String {
    let mut notice = String::new();
    for flash in flashes {
        let _ = write!(
            notice,
            r#"<p class="notice {}" role="status">{}</p>"#,
            flash.level.as_str(),
            escape(&flash.message)
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · sealed-session demo</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header><span class="mark">◆</span> sealed-session <span class="muted">demo</span></header>
<main>
{notice}
{body}
</main>
<footer>Sessions live in an encrypted cookie (XChaCha20-Poly1305). The server stores only revocations.</footer>
</body>
</html>
"#,
        title = escape(title),
    )
}

/// The cart, and the form that adds to it.
fn cart(items: &[String], hidden: &str) -> String {
    let mut list = String::new();
    for item in items {
        let _ = write!(list, "<li>{}</li>", escape(item));
    }
    if list.is_empty() {
        list.push_str(r#"<li class="muted">empty</li>"#);
    }
    format!(
        r#"<section class="card">
<h2>Cart</h2>
<ul id="cart">{list}</ul>
<form method="post" action="/cart" id="add-to-cart">
{hidden}
<label>Item <input name="item" maxlength="64" required></label>
<button type="submit">Add to cart</button>
</form>
</section>"#
    )
}

/// The page for a visitor who is not signed in: the login form, and the
/// cart of their anonymous session if they have one. The CSRF token is the
/// anonymous session's, or else the pre-session's.
#[must_use]
pub fn signed_out(
    csrf_token: &str,
    items: Option<&[String]>,
    next: Option<&str>,
    flashes: &[Flash],
) -> String {
    let token = escape(csrf_token);
    let next = escape(next.unwrap_or_default());
    let hidden = format!(r#"<input type="hidden" name="csrf_token" value="{token}">"#);
    let mut body = format!(
        r#"<section class="card">
<h1>Sign in</h1>
<form method="post" action="/login" id="login">
<input type="hidden" name="csrf_token" value="{token}">
<input type="hidden" name="next" value="{next}">
<label>User name <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label class="check"><input type="checkbox" name="remember" value="on"> Remember me for 30 days</label>
<button type="submit">Sign in</button>
</form>
<p class="muted">Demo users: <code>alice</code> / <code>alice-pass</code> and <code>bob</code> / <code>bob-pass</code>.</p>
</section>"#
    );
    body.push_str(&cart(items.unwrap_or_default(), &hidden));
    layout("Sign in", flashes, &body)
}

/// The page for a signed-in visitor: the session, a form that changes it,
/// and the two ways to log out.
#[must_use]
pub fn signed_in(opened: &Verified<Profile>, csrf_token: &str, flashes: &[Flash]) -> String {
    let session = opened.session();
    let token = escape(csrf_token);
    let hidden = format!(r#"<input type="hidden" name="csrf_token" value="{token}">"#);
    let mut rows = String::new();
    let id = session.id().to_hex();
    let rows_data = [
        ("Session ID", format!("{}…", id.get(..8).unwrap_or(&id))),
        ("User", session.user_id().unwrap_or("-").to_owned()),
        ("Display name", session.data().display_name.clone()),
        ("Issued", session.issued_at().map(timestamp).unwrap_or_default()),
        ("Expires", session.expires_at().map(timestamp).unwrap_or_default()),
        ("Idle deadline", timestamp(opened.idle_expires_at())),
        ("Key ID", opened.key_id().to_string()),
        ("Epoch", session.epoch().to_string()),
        ("Device-bound", if session.is_device_bound() { "yes" } else { "no" }.to_owned()),
    ];
    for (name, value) in rows_data {
        let key = name.to_ascii_lowercase().replace(' ', "-");
        let _ = write!(rows, r#"<tr><th>{name}</th><td id="{key}">{}</td></tr>"#, escape(&value));
    }
    let body = format!(
        r#"<section class="card">
<h1>Signed in as <span id="user">{user}</span></h1>
<table>{rows}</table>
</section>
<section class="card">
<h2>Change the session</h2>
<form method="post" action="/profile" id="profile">
{hidden}
<label>Display name <input name="display_name" value="{name}" maxlength="64" required></label>
<button type="submit">Save</button>
</form>
</section>
{cart}
<section class="card actions">
<form method="post" action="/logout" id="logout">{hidden}<button type="submit">Log out</button></form>
<form method="post" action="/logout-others" id="logout-others">{hidden}<button type="submit">Sign out other sessions</button></form>
<form method="post" action="/logout-everywhere" id="logout-everywhere">{hidden}<button type="submit" class="danger">Log out everywhere</button></form>
</section>
<p><a href="/settings" id="settings-link">Settings</a> (asks for the password again after a while) · <a href="/devices" id="devices-link">Your devices</a></p>"#,
        user = escape(session.user_id().unwrap_or("-")),
        name = escape(&session.data().display_name),
        cart = cart(&session.data().cart, &hidden),
    );
    layout("Your session", flashes, &body)
}

/// The page only signed-in users reach: `GET /account`.
#[must_use]
pub fn account(session: &Session<Profile>) -> String {
    let body = format!(
        r#"<section class="card">
<h1>Account of <span id="user">{user}</span></h1>
<p>Only a signed-in session reaches this page; without one, browsers are sent to sign in and come back here.</p>
<p><a href="/">Back</a></p>
</section>"#,
        user = escape(session.user_id().unwrap_or("-")),
    );
    layout("Account", &[], &body)
}

/// The page behind the sudo window: `GET /settings`, reached only within
/// the window after signing in or confirming the password.
#[must_use]
pub fn settings(
    session: &Session<Profile>,
    confirmed: OffsetDateTime,
    csrf_token: &str,
    flashes: &[Flash],
) -> String {
    let body = format!(
        r#"<section class="card">
<h1>Settings of <span id="user">{user}</span></h1>
<p>Sensitive settings need a recent sign-in or password check: this one was at <span id="authenticated-at">{confirmed}</span>.</p>
<form method="post" action="/settings" id="settings-profile">
<input type="hidden" name="csrf_token" value="{token}">
<label>Display name <input name="display_name" value="{name}" maxlength="64" required></label>
<button type="submit">Save</button>
</form>
<p><a href="/">Back</a></p>
</section>"#,
        user = escape(session.user_id().unwrap_or("-")),
        confirmed = escape(&timestamp(confirmed)),
        token = escape(csrf_token),
        name = escape(&session.data().display_name),
    );
    layout("Settings", flashes, &body)
}

/// The user's sessions: `GET /devices`.
#[must_use]
pub fn devices(devices: &[sealed_session::web::Device], csrf_token: &str, flashes: &[Flash]) -> String {
    let token = escape(csrf_token);
    let mut rows = String::new();
    for device in devices {
        let action = if device.current {
            r#"<span class="muted">this device</span>"#.to_owned()
        } else {
            format!(
                r#"<form method="post" action="/devices/revoke" class="revoke"><input type="hidden" name="csrf_token" value="{token}"><input type="hidden" name="session" value="{id}"><button type="submit">Sign out</button></form>"#,
                id = device.reference,
            )
        };
        let _ = write!(
            rows,
            r#"<tr class="device{current}" data-session="{id}"><td>{agent}{remembered}{bound}</td><td>{created}</td><td>{seen}</td><td>{action}</td></tr>"#,
            current = if device.current { " current" } else { "" },
            id = device.reference,
            agent = escape(&device.user_agent),
            remembered = if device.remembered { " · remembered" } else { "" },
            bound = if device.device_bound { " · device-bound" } else { "" },
            created = escape(&timestamp(device.created_at)),
            seen = escape(&timestamp(device.last_seen)),
        );
    }
    let body = format!(
        r#"<section class="card">
<h1>Where you are signed in</h1>
<table id="devices"><tr><th>Browser</th><th>Signed in</th><th>Last seen</th><th></th></tr>{rows}</table>
</section>
<section class="card actions">
<form method="post" action="/logout-others" id="logout-others"><input type="hidden" name="csrf_token" value="{token}"><button type="submit" class="danger">Sign out all other devices</button></form>
<a href="/">Back</a>
</section>"#
    );
    layout("Your devices", flashes, &body)
}

/// The re-authentication form: `GET /reauth`, which posts the password to
/// `POST /reauth` and goes on to `next`.
#[must_use]
pub fn reauth(user: &str, csrf_token: &str, next: &str, flashes: &[Flash]) -> String {
    let body = format!(
        r#"<section class="card">
<h1>Confirm your password</h1>
<p>The page you asked for needs a recent sign-in. Enter the password of <span id="user">{user}</span> to go on.</p>
<form method="post" action="/reauth" id="reauth">
<input type="hidden" name="csrf_token" value="{token}">
<input type="hidden" name="next" value="{next}">
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Confirm</button>
</form>
</section>"#,
        user = escape(user),
        token = escape(csrf_token),
        next = escape(next),
    );
    layout("Confirm your password", flashes, &body)
}

/// The stylesheet, served at `GET /style.css`.
pub const STYLE: &str = "
:root { --ink: #1d2430; --muted: #667085; --line: #e4e7ec; --accent: #3a5bd9; --bad: #b42318; --good: #067647; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; color: var(--ink); background: #f6f7f9; }
header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); font-weight: 600; }
.mark { color: var(--accent); }
main { max-width: 560px; margin: 32px auto; padding: 0 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 20px 24px; margin-bottom: 16px; }
h1 { font-size: 22px; margin: 0 0 16px; } h2 { font-size: 17px; margin: 0 0 12px; }
label { display: block; margin-bottom: 12px; font-size: 14px; color: var(--muted); }
.check input { display: inline; width: auto; margin: 0 6px 0 0; }
input { display: block; width: 100%; margin-top: 4px; padding: 8px 10px; font: inherit; color: var(--ink);
        border: 1px solid var(--line); border-radius: 6px; }
button { padding: 8px 16px; font: inherit; color: #fff; background: var(--accent); border: 0; border-radius: 6px; cursor: pointer; }
button.danger { background: var(--bad); }
.actions { display: flex; gap: 12px; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th { text-align: left; font-weight: 500; color: var(--muted); width: 40%; }
th, td { padding: 6px 0; border-bottom: 1px solid var(--line); }
td { font-family: ui-monospace, monospace; }
.notice { padding: 10px 14px; border-radius: 6px; margin: 0 0 16px; }
.notice.success, .notice.info { background: #ecfdf3; color: var(--good); }
.notice.error, .notice.warning { background: #fef3f2; color: var(--bad); }
ul { padding-left: 20px; }
.muted { color: var(--muted); font-size: 14px; }
footer { text-align: center; color: var(--muted); font-size: 13px; margin: 32px 0; }
";

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
