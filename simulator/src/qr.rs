//! `GET /_sim/qr/{iccid}.png`: the activation code as a real QR code PNG.
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use qrcode::{Color, QrCode};

use crate::error::{ApiError, ApiResult, ErrorType};
use crate::state::Sim;

const MODULE_PIXELS: usize = 8;
const QUIET_ZONE_MODULES: usize = 4;

pub async fn qr_png(State(sim): State<Sim>, Path(file): Path<String>) -> ApiResult<Response> {
    let iccid = file.strip_suffix(".png").unwrap_or(&file);
    let activation_code = {
        let state = sim.lock();
        let profile = state
            .profiles
            .get(iccid)
            .ok_or_else(|| ApiError::not_found("sim profile", iccid))?;
        profile.activation_code(&state.config.smdp_address)
    };
    let png = render_png(&activation_code)
        .map_err(|message| ApiError::new(ErrorType::InternalError, message))?;
    let mut response = png.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    Ok(response)
}

pub fn render_png(text: &str) -> Result<Vec<u8>, String> {
    let code = QrCode::new(text.as_bytes()).map_err(|error| error.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side_modules = modules + 2 * QUIET_ZONE_MODULES;
    let side = side_modules * MODULE_PIXELS;
    let mut pixels = vec![255u8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (row, column) = (
            index / modules + QUIET_ZONE_MODULES,
            index % modules + QUIET_ZONE_MODULES,
        );
        for y in row * MODULE_PIXELS..(row + 1) * MODULE_PIXELS {
            pixels[y * side + column * MODULE_PIXELS..y * side + (column + 1) * MODULE_PIXELS]
                .fill(0);
        }
    }
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|error| error.to_string())?;
    writer
        .write_image_data(&pixels)
        .map_err(|error| error.to_string())?;
    writer.finish().map_err(|error| error.to_string())?;
    Ok(png)
}
