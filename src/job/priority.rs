//! Job priorities: 1 is the most urgent, 5 the least.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A job priority: 1 is the most urgent, 5 the least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Priority(u8);

impl utoipa::PartialSchema for Priority {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Integer))
            .minimum(Some(1))
            .maximum(Some(5))
            .description(Some("1 (most urgent) to 5 (least)"))
            .into()
    }
}

impl utoipa::ToSchema for Priority {}

impl Priority {
    /// The most urgent level.
    pub const HIGHEST: Priority = Priority(1);
    /// The least urgent level.
    pub const LOWEST: Priority = Priority(5);
    /// Every level, most urgent first.
    pub const LEVELS: [Priority; 5] = [
        Priority(1),
        Priority(2),
        Priority(3),
        Priority(4),
        Priority(5),
    ];

    /// A priority from its number, if it is within 1..=5.
    pub fn new(level: i64) -> Option<Priority> {
        (1..=5).contains(&level).then_some(Priority(level as u8))
    }

    /// The level number (1..=5).
    pub fn get(self) -> u8 {
        self.0
    }

    /// The next less urgent level, if any.
    pub fn less_urgent(self) -> Option<Priority> {
        Priority::new(i64::from(self.0) + 1)
    }

    /// The zero-based index of the level (0 for priority 1).
    pub fn index(self) -> usize {
        usize::from(self.0 - 1)
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority(3)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TryFrom<i64> for Priority {
    type Error = String;
    fn try_from(level: i64) -> Result<Self, Self::Error> {
        Priority::new(level).ok_or_else(|| format!("priority {level} is not within 1..=5"))
    }
}

impl From<Priority> for i64 {
    fn from(priority: Priority) -> i64 {
        i64::from(priority.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_bounds() {
        assert_eq!(Priority::new(0), None);
        assert_eq!(Priority::new(6), None);
        assert_eq!(Priority::new(1), Some(Priority::HIGHEST));
        assert_eq!(Priority::default().get(), 3);
        assert_eq!(Priority::LOWEST.index(), 4);
    }
}
