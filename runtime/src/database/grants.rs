//! The least-privilege grants of a deployment: the instances' role and the administrators'.

use super::DatabaseError;

/// The `GRANT` statements of [`KeyTable::grant`](super::KeyTable::grant) for the table in `schema`: each role name
/// quoted as an identifier, so that it is taken as written (case included).
pub fn grant_statements(
    schema: &str,
    instance: &str,
    admin: &str,
) -> Result<Vec<String>, DatabaseError> {
    let schema = identifier(schema)?;
    let [instance, admin] = [instance, admin].map(role);
    let (instance, admin) = (instance?, admin?);
    Ok(vec![
        format!("GRANT USAGE ON SCHEMA {schema} TO {instance}, {admin};"),
        format!(
            "GRANT SELECT ON {schema}.api_keys, {schema}.api_keys_revision, \
             {schema}.api_keys_deleted TO {instance};"
        ),
        format!("GRANT SELECT, INSERT, UPDATE ON {schema}.api_keys_last_used TO {instance};"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {schema}.api_keys TO {admin};"),
        format!("GRANT SELECT ON {schema}.api_keys_last_used TO {admin};"),
    ])
}

/// A role to grant to, as a quoted identifier. The names PostgreSQL reads as something else
/// even quoted (`"public"` is every role) and its own roles are refused.
fn role(name: &str) -> Result<String, DatabaseError> {
    let lower = name.to_ascii_lowercase();
    let reserved = [
        "public",
        "none",
        "current_user",
        "current_role",
        "session_user",
    ];
    if reserved.contains(&lower.as_str()) || lower.starts_with("pg_") {
        return Err(DatabaseError::Role(name.to_owned()));
    }
    identifier(name)
}

/// `name` as a quoted SQL identifier.
fn identifier(name: &str) -> Result<String, DatabaseError> {
    if name.is_empty() || name.contains('\0') {
        return Err(DatabaseError::Role(name.to_owned()));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_quote_every_name() {
        let grants = grant_statements("svc", "orders app", "Keys\"; DROP TABLE x; --").unwrap();
        assert_eq!(
            grants[0],
            r#"GRANT USAGE ON SCHEMA "svc" TO "orders app", "Keys""; DROP TABLE x; --";"#
        );
        assert!(
            grants.iter().all(|g| !g.contains("\"Keys\";")),
            "{grants:?}"
        );
        assert!(grant_statements("svc", "", "admin").is_err());
        assert!(grant_statements("svc", "a\0b", "admin").is_err());
        // `"public"` grants to every role.
        for reserved in [
            "public",
            "PUBLIC",
            "none",
            "current_user",
            "session_user",
            "pg_monitor",
        ] {
            assert!(
                grant_statements("svc", "app", reserved).is_err(),
                "{reserved}"
            );
        }
    }
}
