//! Pure parsers of the query strings the API takes: `limit=N`,
//! `seen=CHANNEL:MS,CHANNEL:MS` (what the page has already shown, for unread
//! counts) and `token=` (event stream only). Each parser refuses what it does not
//! understand with a message for a 400, never guesses.

use crate::gossip::envelope::ChannelName;
use std::collections::HashMap;

/// Channels at most in one `seen` parameter (a node follows a handful).
pub(super) const MAX_SEEN: usize = 64;

/// The first value of `key` in `query` (`a=1&b=2`), percent-decoded; `None` when
/// absent or not valid percent-encoded UTF-8.
pub(super) fn param(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| percent_decode(v))
}

/// Decodes `%XX` escapes and `+` (as a space); `None` on a bad escape or
/// non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = (bytes.next()? as char).to_digit(16)?;
                let lo = (bytes.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

/// `limit`: absent → `default`; otherwise an integer in `1..=max`.
pub(super) fn limit(query: &str, default: usize, max: usize) -> Result<usize, String> {
    let Some(raw) = param(query, "limit") else {
        return Ok(default);
    };
    match raw.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "limit must be an integer from 1 to {max}, not {raw:?}"
        )),
    }
}

/// `seen`: for each channel, the sent time (Unix ms) of the newest message the
/// page has shown; messages sent later count as unread. Absent → empty.
pub(super) fn seen(query: &str) -> Result<HashMap<ChannelName, u64>, String> {
    let Some(raw) = param(query, "seen") else {
        return Ok(HashMap::new());
    };
    let mut out = HashMap::new();
    for item in raw.split(',').filter(|i| !i.is_empty()) {
        let bad = || format!("seen must be CHANNEL:UNIX_MS,… not {item:?}");
        let (ch, ms) = item.split_once(':').ok_or_else(bad)?;
        let ch = ChannelName::new(ch).map_err(|_| bad())?;
        let ms = ms.parse::<u64>().map_err(|_| bad())?;
        out.insert(ch, ms);
        if out.len() > MAX_SEEN {
            return Err(format!("seen names more than {MAX_SEEN} channels"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_found_and_decoded() {
        assert_eq!(param("a=1&token=ab%20c", "token").as_deref(), Some("ab c"));
        assert_eq!(param("token=x+y", "token").as_deref(), Some("x y"));
        assert_eq!(param("tokenx=1", "token"), None);
        assert_eq!(param("", "token"), None);
        assert_eq!(param("token", "token").as_deref(), Some(""));
        assert_eq!(param("token=%zz", "token"), None);
        assert_eq!(param("token=%ff", "token"), None);
        assert_eq!(param("token=%4", "token"), None);
    }

    #[test]
    fn limit_is_bounded() {
        assert_eq!(limit("", 500, 10_000), Ok(500));
        assert_eq!(limit("limit=3", 500, 10_000), Ok(3));
        assert!(limit("limit=0", 500, 10_000).is_err());
        assert!(limit("limit=10001", 500, 10_000).is_err());
        assert!(limit("limit=-1", 500, 10_000).is_err());
        assert!(limit("limit=ten", 500, 10_000).is_err());
    }

    #[test]
    fn seen_parses_channel_times_and_refuses_the_rest() {
        let s = seen("seen=triage:1700000000000,general:5").unwrap();
        assert_eq!(s[&ChannelName::new("triage").unwrap()], 1_700_000_000_000);
        assert_eq!(s[&ChannelName::new("general").unwrap()], 5);
        assert_eq!(seen("seen=triage%3A7").unwrap().len(), 1);
        assert!(seen("").unwrap().is_empty());
        for bad in ["seen=triage", "seen=Triage:1", "seen=triage:x", "seen=:1"] {
            assert!(seen(bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_SEEN).map(|i| format!("c{i}:1")).collect();
        assert!(seen(&format!("seen={}", many.join(","))).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_query_string_parses_or_is_refused_without_panic(q in "\\PC{0,200}") {
            let _ = param(&q, "token");
            let _ = limit(&q, 500, 10_000);
            let _ = seen(&q);
        }

        #[test]
        fn seen_round_trips(pairs in proptest::collection::btree_map("[a-z0-9._-]{1,64}", proptest::num::u64::ANY, 0..MAX_SEEN)) {
            let q = pairs.iter().map(|(c, ms)| format!("{c}:{ms}")).collect::<Vec<_>>().join(",");
            let parsed = seen(&format!("seen={q}")).unwrap();
            proptest::prop_assert_eq!(parsed.len(), pairs.len());
            for (c, ms) in &pairs {
                proptest::prop_assert_eq!(parsed[&ChannelName::new(c).unwrap()], *ms);
            }
        }
    }
}
