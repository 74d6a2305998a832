//! Is `[ai] model` a name the provider serves? Read against the provider's
//! `GET /models` list (`mmbot ai check`).
//!
//! Lists name dated snapshots and tags, configs name aliases: Anthropic's
//! list ("Models": `data[].id`) has `claude-haiku-4-5-20251001` where the
//! alias `claude-haiku-4-5` is asked, Ollama's has `llama3.1:latest` for
//! `llama3.1`. So a name is known when it is listed (any case), or a listed
//! id is the name plus a date or a `:tag`, or the name is `...-latest` of a
//! listed family.

/// Whether `model` is served, given the provider's ids.
pub fn is_listed(ids: &[String], model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    let family = m.strip_suffix("-latest");
    ids.iter().map(|id| id.to_ascii_lowercase()).any(|id| {
        id == m
            || id
                .strip_prefix(&m)
                .is_some_and(|rest| rest.starts_with(':') || rest.strip_prefix('-').is_some_and(is_date))
            // `claude-3-5-haiku-latest`: a dated snapshot of that family
            // (not any id that merely starts with its letters).
            || family.is_some_and(|f| {
                id == f || id.strip_prefix(f).and_then(|r| r.strip_prefix('-')).is_some_and(is_date)
            })
    })
}

/// `20251001` or `2025-04-14`: a snapshot's date suffix.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    match b.len() {
        8 => digits(0..8),
        10 => digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
        _ => false,
    }
}

/// Up to five listed ids closest to `model` (shared name, then edit
/// distance), for the "did you mean" of an unknown model.
pub fn close_matches(ids: &[String], model: &str) -> Vec<String> {
    let m = comparable(model);
    let mut scored: Vec<(usize, &String)> = ids
        .iter()
        .filter_map(|id| {
            let l = comparable(id);
            let d = edit_distance(&l, &m);
            let related = l.contains(&m) || m.contains(&l) || d <= 3.max(m.len() / 4);
            related.then_some((if l.contains(&m) || m.contains(&l) { d.min(2) } else { d }, id))
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(5).map(|(_, id)| id.clone()).collect()
}

/// A name as compared for "close": lower case, `.`/`_` as `-`, without a
/// snapshot date or `:tag` (so `claude-haiku-4.5` is near
/// `claude-haiku-4-5-20251001`).
fn comparable(name: &str) -> String {
    let l: String = name.to_ascii_lowercase().chars().map(|c| if c == '.' || c == '_' { '-' } else { c }).collect();
    let l = l.split(':').next().unwrap_or("").to_string();
    for cut in [9, 11] {
        if l.len() > cut && l.as_bytes()[l.len() - cut] == b'-' && is_date(&l[l.len() - cut + 1..]) {
            return l[..l.len() - cut].to_string();
        }
    }
    l
}

/// Levenshtein distance (both strings are short model names).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn aliases_snapshots_and_tags_are_known() {
        let list = ids(&["gpt-4.1", "gpt-4.1-2025-04-14", "claude-haiku-4-5-20251001", "llama3.1:latest"]);
        for m in ["gpt-4.1", "GPT-4.1", "claude-haiku-4-5", "llama3.1", "claude-haiku-4-5-latest"] {
            assert!(is_listed(&list, m), "{m}");
        }
        for m in ["gpt-4", "gpt-4.1-mini", "claude-haiku", "gpt-9", "gpt-latest", "claude-latest"] {
            assert!(!is_listed(&list, m), "{m}");
        }
    }

    #[test]
    fn close_matches_name_the_likely_intent() {
        let list = ids(&["gpt-4.1", "gpt-4.1-mini", "gpt-5-mini", "o3", "text-embedding-3-small", "dall-e-3"]);
        let c = close_matches(&list, "gpt-4.2");
        assert_eq!(c.first().map(String::as_str), Some("gpt-4.1"), "{c:?}");
        assert!(!c.contains(&"dall-e-3".to_string()), "{c:?}");
        assert_eq!(close_matches(&list, "gpt5-mini").first().map(String::as_str), Some("gpt-5-mini"));
        assert!(close_matches(&list, "zzzzzzzzzzzzzzzzzzzzzz").is_empty());
        let list = ids(&["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929", "llama3.1:latest"]);
        assert_eq!(close_matches(&list, "claude-haiku-4.5")[0], "claude-haiku-4-5-20251001");
        assert_eq!(close_matches(&list, "llama3")[0], "llama3.1:latest");
    }
}
