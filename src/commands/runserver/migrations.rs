//! Unapplied migrations, as Django's runserver warns about them: before
//! each start of the app, the project's migrations directory is compared
//! with its database (through the crate's `database` module, as `manage
//! showmigrations` does). Pending ones are said in the terminal when they
//! change and published to the proxy, which puts a banner on pages and
//! lists them at `/__manage/errors`. With `--migrate` they are applied
//! first instead.
//!
//! A project without a migrations directory is not checked at all, and a
//! database that cannot be reached is a warning, never a stop: the app
//! decides for itself what it does without one.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::sync::watch;

use crate::database::{self, Migrations, State, Target};
use crate::ui::Ui;

/// The names of the pending migrations, as the proxy sees them.
pub type Pending = Arc<Vec<String>>;

#[derive(Debug)]
pub struct MigrationCheck {
    target: Target,
    apply: bool,
    published: watch::Sender<Pending>,
    /// The last thing said, so that each message is said once.
    said: Mutex<String>,
}

impl MigrationCheck {
    pub fn new(target: Target, apply: bool) -> Arc<MigrationCheck> {
        Arc::new(MigrationCheck {
            target,
            apply,
            published: watch::channel(Pending::default()).0,
            said: Mutex::new(String::new()),
        })
    }

    /// The database and migrations it checks.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// What the proxy reads: the pending migrations after the last check.
    pub fn subscribe(&self) -> watch::Receiver<Pending> {
        self.published.subscribe()
    }

    /// Checks (or, with `--migrate`, applies) before a start.
    pub async fn run(&self, ui: &Ui) {
        if !self.target.migrations_dir.is_dir() {
            if self.apply {
                self.say(
                    ui,
                    format!(
                        "--migrate: there is no migrations directory `{}`; nothing to apply",
                        self.target.migrations_dir.display()
                    ),
                );
            }
            return;
        }
        match self.check(ui).await {
            Ok(pending) => {
                if !pending.is_empty() {
                    self.say(
                        ui,
                        format!(
                            "{} unapplied migration{}: {}. The app may not work until they \
                             are applied: run `manage migrate` (or restart with `manage \
                             runserver --migrate`)",
                            pending.len(),
                            if pending.len() == 1 { "" } else { "s" },
                            pending.join(", ")
                        ),
                    );
                } else {
                    self.said.lock().unwrap_or_else(|e| e.into_inner()).clear();
                }
                self.published.send_replace(Arc::new(pending));
            }
            Err(err) => self.say(ui, format!("cannot check the migrations: {err:#}")),
        }
    }

    async fn check(&self, ui: &Ui) -> Result<Vec<String>> {
        let migrations = Migrations::load(&self.target.migrations_dir).await?;
        let mut conn = database::connect(&self.target.db, self.apply).await?;
        if self.apply {
            if let Some(conn) = conn.as_mut() {
                for name in migrations.apply(conn).await? {
                    ui.status("Migrated", name);
                }
            }
        }
        let entries = migrations.status(conn.as_mut()).await;
        if let Some(conn) = conn {
            conn.close().await;
        }
        let entries = entries?;
        database::check(&entries, &self.target.migrations_dir)?;
        Ok(entries
            .into_iter()
            .filter(|e| e.state == State::Pending)
            .map(|e| e.name)
            .collect())
    }

    fn say(&self, ui: &Ui, message: String) {
        let mut said = self.said.lock().unwrap_or_else(|e| e.into_inner());
        if *said != message {
            ui.warn(&message);
            *said = message;
        }
    }
}
