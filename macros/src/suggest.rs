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
