//! `migrate`: applies, reverts or lists the Uchat schema migrations.
//!
//! The split stack runs `migrate up` once before the services start; `uchat-server` migrates by
//! itself.

use anyhow::Context;
use clap::{Parser, Subcommand};
use migrations::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::Database;

/// Applies, reverts or lists the Uchat database migrations.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Database URL: `sqlite://path?mode=rwc` or `postgres://user@host/db`.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies every pending migration (the default for a new database).
    Up,
    /// Reverts the last `steps` migrations.
    Down {
        /// How many to revert.
        #[arg(default_value_t = 1)]
        steps: u32,
    },
    /// Lists migrations and whether each is applied.
    Status,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let db = Database::connect(&cli.database_url)
        .await
        .context("cannot connect to the database")?;
    match cli.command {
        Command::Up => {
            Migrator::up(&db, None).await?;
            println!("all migrations applied");
        }
        Command::Down { steps } => {
            Migrator::down(&db, Some(steps)).await?;
            println!("reverted {steps} migration(s)");
        }
        Command::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                println!(
                    "{:<8} {}",
                    format!("{:?}", migration.status()),
                    migration.name()
                );
            }
        }
    }
    Ok(())
}
