//! A plotters drawing backend for the charts: plotters' RGB bitmap backend for shapes, and our
//! own text drawing with `ab_glyph` and the embedded DejaVu Sans (kerning, side bearings and
//! baselines placed properly), so that no system font library is needed.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::backend::{BitMapBackend, DrawingBackend};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind};

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The embedded font (parsed once).
pub fn font() -> anyhow::Result<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(FONT_BYTES).ok())
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the chart font embedded in onyx could not be read"))
}

/// A line of text laid out at a size (the em, in pixels): glyphs placed from (0, 0) at the top
/// left of the line box; `width`×`height` is that box.
struct Line {
    glyphs: Vec<ab_glyph::OutlinedGlyph>,
    width: i32,
    height: i32,
}

fn lay_out(font: &FontRef<'static>, size: f64, text: &str) -> Line {
    // PxScale is the font's height (ascent − descent) in pixels; make `size` the em instead.
    let units = font.units_per_em().unwrap_or(2048.0);
    let scale = PxScale::from((size as f32) * font.height_unscaled() / units);
    let scaled = font.as_scaled(scale);
    let baseline = scaled.ascent();
    let mut pen = 0.0f32;
    let mut previous = None;
    let mut glyphs = Vec::new();
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(previous) = previous {
            pen += scaled.kern(previous, id);
        }
        let glyph = id.with_scale_and_position(scale, point(pen, baseline));
        if let Some(outlined) = font.outline_glyph(glyph) {
            glyphs.push(outlined);
        }
        pen += scaled.h_advance(id);
        previous = Some(id);
    }
    Line { glyphs, width: pen.ceil() as i32, height: (scaled.ascent() - scaled.descent()).ceil() as i32 }
}

/// plotters' bitmap backend with our text drawing.
pub struct Canvas<'a> {
    inner: BitMapBackend<'a>,
    font: &'static FontRef<'static>,
}

impl<'a> Canvas<'a> {
    pub fn new(rgb: &'a mut [u8], size: (u32, u32)) -> anyhow::Result<Self> {
        Ok(Self { inner: BitMapBackend::with_buffer(rgb, size), font: font()? })
    }
}

type Error<'a> = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

impl<'a> DrawingBackend for Canvas<'a> {
    type ErrorType = Error<'a>;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 || text.is_empty() {
            return Ok(());
        }
        let line = lay_out(self.font, style.size(), text);
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0,
            HPos::Center => -line.width / 2,
            HPos::Right => -line.width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0,
            VPos::Center => -line.height / 2,
            VPos::Bottom => -line.height,
        };
        let transform = style.transform();
        let (width, height) = self.get_size();
        let mut pixels = Vec::new();
        for glyph in &line.glyphs {
            let bounds = glyph.px_bounds();
            glyph.draw(|x, y, coverage| {
                if coverage > 0.0 {
                    let gx = bounds.min.x as i32 + x as i32 + dx;
                    let gy = bounds.min.y as i32 + y as i32 + dy;
                    pixels.push((transform.transform(gx, gy), coverage));
                }
            });
        }
        for ((x, y), coverage) in pixels {
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && y >= 0 && (x as u32) < width && (y as u32) < height {
                let alpha = color.alpha * f64::from(coverage.min(1.0));
                self.inner.draw_pixel((x, y), BackendColor { alpha, rgb: color.rgb })?;
            }
        }
        Ok(())
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let line = lay_out(self.font, style.size(), text);
        Ok((line.width.max(0) as u32, line.height.max(0) as u32))
    }
}
