//! "Did you mean …?" for misspelt names.

/// The candidate closest to `typo` by edit distance, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(typo: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // A third of the length, at least one edit: `scopes` -> `scope`, `scpoe` -> `scope`,
    // but not `foo` -> `scope`.
    let limit = typo.chars().count().div_ceil(3).max(1);
    candidates
        .iter()
        .map(|candidate| (edit_distance(typo, candidate), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance: insertions, deletions and substitutions, one row at a time.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, a_char) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != *b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{closest, edit_distance};

    /// The runtime suggests field names with its own copy of the distance (a proc-macro crate
    /// cannot share code with the crate it expands to): both must count alike, on every pair of
    /// strings of up to four characters over a small alphabet.
    #[test]
    fn the_runtime_counts_edits_alike() {
        let alphabet = ['a', 'b', '_', ':'];
        let mut words = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..4 {
            last = last
                .iter()
                .flat_map(|w| alphabet.iter().map(move |c| format!("{w}{c}")))
                .collect();
            words.extend(last.iter().cloned());
        }
        for a in &words {
            for b in &words {
                assert_eq!(
                    edit_distance(a, b),
                    rocket_api_key::__private::rules::edit_distance(a, b),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("scope", "scope"), 0);
        assert_eq!(edit_distance("scopes", "scope"), 1);
        assert_eq!(edit_distance("scpoe", "scope"), 2);
        assert_eq!(edit_distance("", "crate"), 5);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions() {
        let arguments = ["scope", "crate"];
        assert_eq!(closest("scopes", &arguments), Some("scope"));
        assert_eq!(closest("Scope", &arguments), Some("scope"));
        assert_eq!(closest("krate", &arguments), Some("crate"));
        assert_eq!(closest("scpoe", &arguments), Some("scope"));
        assert_eq!(closest("rank", &arguments), None);
        assert_eq!(closest("x", &arguments), None);
        assert_eq!(closest("al", &["all", "any"]), Some("all"));
    }
}
