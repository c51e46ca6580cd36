//! The macro that turns the list of job kinds into [`super::JobType`] (their names),
//! [`super::Payload`] (their typed payloads) and [`super::Output`] (their typed outputs),
//! with the dispatch between them.

/// Registers job kinds: each line `module::Kind` declares the kind's module and adds it to
/// `JobType`, `Payload`, `Output` and every dispatch below.
macro_rules! job_kinds {
    ($($module:ident :: $kind:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// What a job does: one name per registered job kind.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum JobType {
            $(
                #[doc = concat!("The `", stringify!($module), "` kind.")]
                $kind,
            )+
        }

        impl JobType {
            /// Every job type, in registration order.
            pub const ALL: &'static [JobType] = &[$(JobType::$kind),+];

            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self { $(JobType::$kind => <$module::$kind as JobKind>::NAME),+ }
            }

            /// Whether the kind needs a browser whatever the strategy.
            pub fn needs_browser(self) -> bool {
                match self { $(JobType::$kind => <$module::$kind as JobKind>::NEEDS_BROWSER),+ }
            }

            /// Whether the kind reaches the target site (and so is judged, learned from and
            /// climbs rungs); `noop` does not.
            pub fn reaches_web(self) -> bool {
                match self { $(JobType::$kind => <$module::$kind as JobKind>::REACHES_WEB),+ }
            }

            /// The contract's names of this kind's payload and output schemas.
            pub fn schema_names(self) -> (String, String) {
                match self {
                    $(JobType::$kind => (
                        <<$module::$kind as JobKind>::Payload as utoipa::ToSchema>::name().into_owned(),
                        <<$module::$kind as JobKind>::Output as utoipa::ToSchema>::name().into_owned(),
                    )),+
                }
            }

            /// Every kind's payload and output schemas, with each schema they use, for the
            /// contract's components.
            pub fn schemas() -> Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)> {
                use utoipa::{PartialSchema, ToSchema};
                let mut schemas = Vec::new();
                $(
                    {
                        type P = <$module::$kind as JobKind>::Payload;
                        schemas.push((P::name().into_owned(), P::schema()));
                        P::schemas(&mut schemas);
                        type O = <$module::$kind as JobKind>::Output;
                        schemas.push((O::name().into_owned(), O::schema()));
                        O::schemas(&mut schemas);
                    }
                )+
                schemas
            }

            /// The accepted names, comma-separated, for error messages.
            pub fn expected() -> String {
                JobType::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for JobType {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl utoipa::PartialSchema for JobType {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let names: Vec<&str> = JobType::ALL.iter().map(|t| t.as_str()).collect();
                crate::job::names::string_enum(&names)
            }
        }

        impl utoipa::ToSchema for JobType {}

        impl serde::Serialize for JobType {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for JobType {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                name.parse().map_err(|e: crate::job::UnknownName| {
                    serde::de::Error::custom(format!("unknown job type {name:?}; {e}"))
                })
            }
        }

        impl std::str::FromStr for JobType {
            type Err = crate::job::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                JobType::ALL
                    .iter()
                    .copied()
                    .find(|t| t.as_str() == s)
                    .ok_or_else(|| crate::job::UnknownName { expected: JobType::expected() })
            }
        }

        /// A job's payload, parsed for its kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Payload {
            $(
                #[doc = concat!("The payload of a `", stringify!($module), "` job.")]
                $kind(<$module::$kind as JobKind>::Payload),
            )+
        }

        impl Payload {
            /// The kind this payload belongs to.
            pub fn job_type(&self) -> JobType {
                match self { $(Payload::$kind(_) => JobType::$kind),+ }
            }

            /// Parses the payload object of a `job_type` job with the kind's parser.
            pub fn parse(job_type: JobType, fields: &mut Fields<'_>, strategy: Option<Strategy>) -> Parsed<Payload> {
                let payload = match job_type {
                    $(JobType::$kind => <$module::$kind as JobKind>::parse(fields, strategy).map(Payload::$kind)),+
                }?;
                crate::kinds::page::check_profile(&payload, fields, strategy)?;
                Some(payload)
            }

            /// Whether this job needs a browser (its kind, or what its payload asks for).
            pub fn needs_browser(&self) -> bool {
                // A saving job's state is captured from a browser (the http engine only
                // sends a profile's cookies).
                let saves = self.page().is_some_and(crate::engine::options::PageOptions::saves_profile);
                saves || match self { $(Payload::$kind(payload) => <$module::$kind as JobKind>::needs_browser(payload)),+ }
            }

            /// The job's page options, when its kind loads a page.
            pub fn page(&self) -> Option<&crate::engine::options::PageOptions> {
                match self { $(Payload::$kind(payload) => <$module::$kind as JobKind>::page(payload)),+ }
            }

            /// The same, to change.
            pub fn page_mut(&mut self) -> Option<&mut crate::engine::options::PageOptions> {
                match self { $(Payload::$kind(payload) => <$module::$kind as JobKind>::page_mut(payload)),+ }
            }

            /// The payload as stored: the kind's payload in its serde form.
            pub fn to_stored(&self) -> serde_json::Value {
                let stored = match self {
                    $(Payload::$kind(payload) => serde_json::to_value(payload)),+
                };
                // Payload types are plain data: serializing them cannot fail.
                stored.unwrap_or_default()
            }

            /// Reads a stored payload back (written by [`Payload::to_stored`]).
            pub fn from_stored(job_type: JobType, stored: &serde_json::Value) -> Result<Payload, serde_json::Error> {
                match job_type {
                    $(JobType::$kind => <$module::$kind as JobKind>::Payload::deserialize(stored).map(Payload::$kind)),+
                }
            }

            /// Runs one rung of an attempt.
            pub async fn run(&self, run: &Run<'_>) -> Result<Output, JobError> {
                match self {
                    $(Payload::$kind(payload) => <$module::$kind as JobKind>::run(payload, run).await.map(Output::$kind)),+
                }
            }
        }

        /// What one kind's run produced: the kind's own output (its fields are the job's
        /// result, beside the attempt's own).
        #[derive(Debug, serde::Serialize)]
        #[serde(untagged)]
        pub enum Output {
            $(
                #[doc = concat!("The output of a `", stringify!($module), "` job.")]
                $kind(<$module::$kind as JobKind>::Output),
            )+
        }
    };
}
pub(super) use job_kinds;
