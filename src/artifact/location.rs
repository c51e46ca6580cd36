//! Where artifacts' bytes go: a directory on this machine, or a bucket of an S3-compatible
//! store that every process of a deployment reaches.

use std::fmt;
use std::path::PathBuf;

/// The place named by `ARTIFACT_STORE` (or `ARTIFACT_DIR`, or `DATA_DIR/artifacts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// A directory: one machine only (the default, and `dev`'s).
    Dir(PathBuf),
    /// `s3://bucket/prefix`: shared by every host that has the bucket's credentials.
    Bucket(Bucket),
}

/// A bucket and the key prefix under which artifacts are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's name.
    pub name: String,
    /// Keys start with this (no leading or trailing `/`; empty for the bucket's root).
    pub prefix: String,
}

impl fmt::Display for ArtifactLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArtifactLocation::Dir(dir) => write!(f, "{}", dir.display()),
            ArtifactLocation::Bucket(Bucket { name, prefix }) if prefix.is_empty() => {
                write!(f, "s3://{name}")
            }
            ArtifactLocation::Bucket(Bucket { name, prefix }) => write!(f, "s3://{name}/{prefix}"),
        }
    }
}

impl std::str::FromStr for ArtifactLocation {
    type Err = String;

    /// `s3://bucket[/prefix]`, or a directory's path (`file://` accepted).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.is_empty() {
            return Err("is empty: give a directory or s3://bucket/prefix".to_owned());
        }
        if let Some(rest) = value.strip_prefix("s3://") {
            return bucket(rest).map(ArtifactLocation::Bucket);
        }
        if let Some(path) = value.strip_prefix("file://") {
            return Ok(ArtifactLocation::Dir(PathBuf::from(path)));
        }
        if value.contains("://") {
            return Err(format!(
                "{value:?}: only s3:// buckets and directories are supported"
            ));
        }
        Ok(ArtifactLocation::Dir(PathBuf::from(value)))
    }
}

/// S3's rules for bucket names (3–63 lower-case letters, digits, `.`, `-`), and a prefix of
/// plain path segments.
fn bucket(rest: &str) -> Result<Bucket, String> {
    let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_name = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-'))
        && !name.starts_with(['.', '-'])
        && !name.ends_with(['.', '-']);
    if !valid_name {
        return Err(format!(
            "s3://{rest}: {name:?} is not a bucket name (3 to 63 lower-case letters, digits, '.' and '-')"
        ));
    }
    let prefix = prefix.trim_matches('/');
    let valid_prefix = prefix.len() <= 200
        && prefix.split('/').all(|segment| {
            prefix.is_empty()
                || (!segment.is_empty()
                    && segment != "."
                    && segment != ".."
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        });
    if !valid_prefix {
        return Err(format!(
            "s3://{rest}: the prefix {prefix:?} must be path segments of letters, digits, '.', '_' and '-' (at most 200 characters)"
        ));
    }
    Ok(Bucket {
        name: name.to_owned(),
        prefix: prefix.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_directories_are_told_apart() {
        let parsed: ArtifactLocation = "s3://cp-artifacts/prod/eu/".parse().expect("parses");
        assert_eq!(
            parsed,
            ArtifactLocation::Bucket(Bucket {
                name: "cp-artifacts".into(),
                prefix: "prod/eu".into()
            })
        );
        assert_eq!(parsed.to_string(), "s3://cp-artifacts/prod/eu");
        let root: ArtifactLocation = "s3://cp-artifacts".parse().expect("parses");
        assert_eq!(root.to_string(), "s3://cp-artifacts");
        assert_eq!(
            "/var/lib/cp".parse::<ArtifactLocation>(),
            Ok(ArtifactLocation::Dir("/var/lib/cp".into()))
        );
        assert_eq!(
            "file:///srv/a".parse::<ArtifactLocation>(),
            Ok(ArtifactLocation::Dir("/srv/a".into()))
        );
    }

    #[test]
    fn what_no_store_could_use_is_refused_by_name() {
        for bad in [
            "",
            "s3://",
            "s3://UPPER",
            "s3://ab",
            "s3://bucket/../etc",
            "s3://bucket/a//b",
            "gs://bucket",
            "s3://-bucket",
        ] {
            let error = bad.parse::<ArtifactLocation>().expect_err(bad);
            assert!(!error.is_empty(), "{bad}");
        }
    }
}
