//! SVG pictures drawn as PNG (for `cnnc eval --confusion OUT.png`), with
//! `resvg`: the same picture as the SVG, its text set in a font of the
//! system's.

/// The PNG of `svg`, and whether the text could be set (`false` when the
/// system has no font: the picture has no labels then).
pub fn svg_to_png(svg: &str) -> Result<(Vec<u8>, bool), String> {
    let mut options = resvg::usvg::Options::default();
    let db = options.fontdb_mut();
    db.load_system_fonts();
    // `sans-serif` means Arial to fontdb; where it is missing, a sans-serif
    // face the system has (else its first face) stands in.
    let families: Vec<String> = db
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let sans = families
        .iter()
        .find(|n| n.contains("Sans") && !n.contains("Mono"))
        .or(families.first())
        .cloned();
    let has_fonts = sans.is_some();
    if let Some(family) = sans {
        if !families.iter().any(|n| n == "Arial") {
            db.set_sans_serif_family(family.clone());
        }
        options.font_family = family;
    }
    let tree = resvg::usvg::Tree::from_str(svg, &options).map_err(|e| format!("SVG: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| format!("a picture of {}x{} pixels", size.width(), size.height()))?;
    // A white page, as the SVG shows in a browser.
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    let png = pixmap.encode_png().map_err(|e| format!("PNG: {e}"))?;
    Ok((png, has_fonts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A red square on white comes out as a PNG of the SVG's size with
    /// both colours in it.
    #[test]
    fn draws_an_svg_as_png() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect x="0" y="0" width="10" height="10" fill="red"/></svg>"#;
        let (png, _) = svg_to_png(svg).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(img.dimensions(), (40, 20));
        assert_eq!(img.get_pixel(5, 5).0, [255, 0, 0, 255]);
        assert_eq!(img.get_pixel(30, 15).0, [255, 255, 255, 255]);
    }

    #[test]
    fn a_broken_svg_is_an_error() {
        assert!(svg_to_png("<svg").is_err());
    }
}
