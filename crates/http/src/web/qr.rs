//! QR codes drawn as SVG by our own code from `qrcodegen`'s module matrix.

use maud::{Markup, PreEscaped};
use qrcodegen::{QrCode, QrCodeEcc};

/// `text` as an inline SVG QR code with a quiet zone, labelled for screen readers.
pub fn svg(text: &str, label: &str) -> Markup {
    let Ok(qr) = QrCode::encode_text(text, QrCodeEcc::Medium) else {
        return maud::html! { p { "(too long for a QR code)" } };
    };
    let size = qr.size();
    let border = 4;
    let dim = size + 2 * border;
    let mut path = String::new();
    for y in 0..size {
        for x in 0..size {
            if qr.get_module(x, y) {
                path.push_str(&format!("M{},{}h1v1h-1z", x + border, y + border));
            }
        }
    }
    let label = maud::html! { (label) }.into_string();
    PreEscaped(format!(
        r##"<svg class="qr" role="img" aria-label="{label}" viewBox="0 0 {dim} {dim}" xmlns="http://www.w3.org/2000/svg" shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path d="{path}" fill="#000"/></svg>"##
    ))
}
