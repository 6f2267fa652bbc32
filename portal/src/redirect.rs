//! Where the browser may go after signing in: a path on the portal itself, never another
//! site. `next` arrives from a link anyone can craft (`/login?next=`, `/sso/start?next=`),
//! so it is parsed the way a browser would parse it before it is trusted.

use percent_encoding::percent_decode_str;
use url::Url;

/// The path to send a signed-in browser to: `next` when it is a path on this site, else `/`.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    next.and_then(same_origin_path)
        .unwrap_or_else(|| "/".to_owned())
}

/// `next` as a path and query on this origin, or `None`. The answer is a path, which the
/// browser resolves against the host it is on (the tenant's portal), so checking the origin
/// against any fixed base is the same check as against the tenant's own URL.
fn same_origin_path(next: &str) -> Option<String> {
    let decoded = percent_decode_str(next).decode_utf8().ok()?;
    let (decoded_path, _) = decoded.split_once(['?', '#']).unwrap_or((&decoded, ""));
    // Browsers drop tabs and newlines and read `\` as `/`, so `/\t/evil.example` and
    // `/\evil.example` both mean `//evil.example`: another host.
    if !starts_with_one_slash(next)
        || !starts_with_one_slash(decoded_path)
        || next
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
        || decoded.chars().any(char::is_control)
        || decoded_path.chars().any(|c| c.is_whitespace() || c == '\\')
    {
        return None;
    }
    let base = Url::parse("https://portal.invalid/").expect("a fixed valid URL");
    let joined = base.join(next).ok()?;
    // `/.//evil.example` passes the checks above but normalises to `//evil.example`.
    if joined.origin() != base.origin() || joined.path().starts_with("//") {
        return None;
    }
    Some(match joined.query() {
        Some(query) => format!("{}?{query}", joined.path()),
        None => joined.path().to_owned(),
    })
}

fn starts_with_one_slash(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next() == Some('/') && !matches!(chars.next(), Some('/' | '\\'))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn paths_on_this_site_are_kept() {
        for (next, kept) in [
            ("/", "/"),
            ("/members", "/members"),
            ("/lines?state=ready&q=a%20b", "/lines?state=ready&q=a%20b"),
            ("/settings/sso#top", "/settings/sso"),
            ("/a/../members", "/members"),
            ("/%252F%252Fmembers", "/%252F%252Fmembers"),
        ] {
            assert_eq!(safe_next(Some(next)), kept, "{next:?}");
        }
    }

    #[test]
    fn anything_that_could_leave_the_site_becomes_the_front_page() {
        for next in [
            "/%09/evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/%0d%0a/evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/%5Cevil.example",
            "/%2F%2Fevil.example",
            "/%2f/evil.example",
            "/.//evil.example",
            "/%2Fmembers",
            "https://evil.example",
            "https:evil.example",
            "javascript:alert(1)",
            "evil.example",
            " /members",
            "/members /x",
            "/%E2%80%A8/evil.example",
            "/%ff",
            "",
        ] {
            assert_eq!(safe_next(Some(next)), "/", "{next:?}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
