//! `control-plane keys create|list|revoke`: API keys in the database the API reads them
//! from (DATABASE_URL, else the embedded database in DATA_DIR).

use std::sync::Arc;

use super::StartError;
use super::connect::open_store;
use crate::auth::{ApiKey, KeyId, KeyIndex, KeyRecord};
use crate::config::{KeysCommand, Settings};
use crate::store::SqliteStore;

/// Runs one `keys` command, printing its answer on stdout.
pub async fn run(command: KeysCommand, settings: &Settings) -> Result<(), StartError> {
    let index = open_index(settings).await?;
    match command {
        KeysCommand::Create { tenant, role, name } => {
            let key = ApiKey::generate();
            index
                .add_key(&KeyRecord::new(&key, &tenant, role, &name))
                .await?;
            eprintln!("created a {role} key for tenant {tenant}; it is shown only this once:");
            println!("{}", key.reveal());
        }
        KeysCommand::List => {
            println!(
                "{:<12}  {:<20}  {:<6}  {:<20}  {:<20}  revoked",
                "id", "tenant", "role", "name", "created"
            );
            for key in index.keys().await? {
                let revoked = key
                    .revoked_at
                    .map(|at| at.format("%Y-%m-%d %H:%M").to_string());
                println!(
                    "{:<12}  {:<20}  {:<6}  {:<20}  {:<20}  {}",
                    key.id,
                    key.tenant,
                    key.role,
                    key.name,
                    key.created_at.format("%Y-%m-%d %H:%M"),
                    revoked.as_deref().unwrap_or("-"),
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let id = KeyId::parse(id.trim_start_matches("cp_")).ok_or_else(|| {
                StartError::Usage(format!("{id:?} is not a key id (12 hex characters)"))
            })?;
            if !index.revoke_key(&id).await? {
                return Err(StartError::Usage(format!("no active key {id}")));
            }
            eprintln!("revoked key {id}");
        }
    }
    Ok(())
}

/// The production database when DATABASE_URL is set, else the embedded one (which a
/// running `dev` process shares: SQLite lets both use it).
async fn open_index(settings: &Settings) -> Result<Arc<dyn KeyIndex>, StartError> {
    if settings.database_url.is_some() {
        let store: Arc<dyn KeyIndex> = open_store(settings, true).await?;
        return Ok(store);
    }
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| StartError::DataDir {
        path: settings.data_dir.clone(),
        reason: e.to_string(),
    })?;
    let store = SqliteStore::open(&settings.data_dir)
        .await
        .map_err(|e| StartError::DataDir {
            path: settings.data_dir.clone(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(store))
}
