//! What a reload changed: the names added, removed and changed between two stores.

use std::fmt;

/// What a reload changed, by key name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Names that are new.
    pub added: Vec<String>,
    /// Names that are gone (revoked).
    pub removed: Vec<String>,
    /// Names whose key, scopes, expiry or addresses changed.
    pub changed: Vec<String>,
}

impl ReloadSummary {
    /// Whether the reload changed nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "added [{}], removed [{}], changed [{}]",
            self.added.join(", "),
            self.removed.join(", "),
            self.changed.join(", ")
        )
    }
}

/// Names as a log field shows them: all of them up to [`NameList::SHOWN`], then how many more,
/// so that a load of 100,000 keys is not one line of megabytes.
pub(crate) struct NameList<'a>(pub &'a [String]);

impl NameList<'_> {
    /// How many names a log field shows.
    pub const SHOWN: usize = 32;
}

impl fmt::Debug for NameList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        list.entries(self.0.iter().take(Self::SHOWN));
        if self.0.len() > Self::SHOWN {
            list.entry(&format_args!("… {} more", self.0.len() - Self::SHOWN));
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_name_lists_are_cut_with_a_count() {
        let few: Vec<String> = vec!["a".into(), "b".into()];
        assert_eq!(format!("{:?}", NameList(&few)), format!("{few:?}"));
        let many: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let shown = format!("{:?}", NameList(&many));
        assert!(shown.starts_with(r#"["k0", "k1""#), "{shown}");
        assert!(shown.ends_with(r#""k31", … 68 more]"#), "{shown}");
    }
}
