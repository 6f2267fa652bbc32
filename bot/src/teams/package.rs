//! The Teams app package an admin uploads to Microsoft Teams: `manifests/teams/manifest.json`
//! with this server's host and bot id filled in, and its two icons, zipped at the top level.

use std::io::Write;

use zip::write::SimpleFileOptions;

const MANIFEST: &str = include_str!("../../../manifests/teams/manifest.json");
/// 192×192, full colour.
const COLOR_ICON: &[u8] = include_bytes!("../../../manifests/teams/color.png");
/// 32×32, white on transparent.
const OUTLINE_ICON: &[u8] = include_bytes!("../../../manifests/teams/outline.png");

/// The manifest for the bot registered as `app_id`, served from `host` (no scheme, no port:
/// Teams wants bare domains). The Teams app takes the bot's id as its own id too.
pub fn manifest(app_id: &str, host: &str) -> String {
    MANIFEST
        .replace("{{TEAMS_APP_ID}}", app_id)
        .replace("{{MICROSOFT_APP_ID}}", app_id)
        .replace("{{LINEUP_DOMAIN}}", host)
}

/// The zip Teams accepts: `manifest.json`, `color.png` and `outline.png`.
pub fn app_package(app_id: &str, host: &str) -> std::io::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in [
        ("manifest.json", manifest(app_id, host).into_bytes()),
        ("color.png", COLOR_ICON.to_vec()),
        ("outline.png", OUTLINE_ICON.to_vec()),
    ] {
        zip.start_file(name, options)
            .map_err(std::io::Error::other)?;
        zip.write_all(&bytes)?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG's width and height, from its IHDR chunk.
    fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        (word(16), word(20))
    }

    #[test]
    fn the_package_holds_the_filled_manifest_and_both_icons() {
        let app_id = "00000000-0000-0000-0000-00000000b07a";
        let bytes = app_package(app_id, "lineup.example.com").unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = zip
            .file_names()
            .map(|name| name.unwrap().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["color.png", "manifest.json", "outline.png"]);
        let read = |zip: &mut zip::ZipArchive<_>, name: &str| {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut out).unwrap();
            out
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&read(&mut zip, "manifest.json")).unwrap();
        assert_eq!(manifest["id"], app_id);
        assert_eq!(manifest["bots"][0]["botId"], app_id);
        assert_eq!(manifest["validDomains"][0], "lineup.example.com");
        assert_eq!(
            manifest["developer"]["websiteUrl"],
            "https://lineup.example.com"
        );
        assert!(!manifest.to_string().contains("{{"), "{manifest}");
        assert_eq!(png_size(&read(&mut zip, "color.png")), (192, 192));
        assert_eq!(png_size(&read(&mut zip, "outline.png")), (32, 32));
    }
}
