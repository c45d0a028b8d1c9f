//! What the client remembers between runs: the last server, the last username and the
//! language. Never the password. A small `key=value` file in the data folder.

use std::path::Path;

use crate::i18n::Lang;

/// The settings file's name inside the data folder.
pub const FILE: &str = "settings";

/// Remembered choices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The last server logged in to.
    pub server: Option<String>,
    /// The last username logged in with.
    pub username: Option<String>,
    /// The chosen language.
    pub lang: Option<Lang>,
}

impl Settings {
    /// Reads the file; a missing or unreadable one gives the defaults.
    pub fn load(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .map(|text| Self::parse(&text))
            .unwrap_or_default()
    }

    /// Parses `key=value` lines; unknown keys are ignored.
    pub fn parse(text: &str) -> Self {
        let mut settings = Self::default();
        for (key, value) in text.lines().filter_map(|l| l.split_once('=')) {
            let value = value.trim();
            match key.trim() {
                "server" if !value.is_empty() => settings.server = Some(value.to_owned()),
                "username" if !value.is_empty() => settings.username = Some(value.to_owned()),
                "lang" => settings.lang = Lang::from_code(value),
                _ => {}
            }
        }
        settings
    }

    /// Writes the file.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = String::new();
        for (key, value) in [
            ("server", self.server.as_deref()),
            ("username", self.username.as_deref()),
            ("lang", self.lang.map(Lang::code)),
        ] {
            if let Some(value) = value {
                text.push_str(&format!("{key}={}\n", value.replace('\n', " ")));
            }
        }
        std::fs::write(path, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_without_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let settings = Settings {
            server: Some("10.0.0.1:7878".into()),
            username: Some("小明".into()),
            lang: Some(Lang::Zh),
        };
        settings.save(&path).unwrap();
        assert_eq!(Settings::load(&path), settings);
        assert_eq!(
            Settings::load(&dir.path().join("none")),
            Settings::default()
        );
    }
}
