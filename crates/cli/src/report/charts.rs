//! PNG charts for the report, drawn with plotters into an RGB buffer and written with `png`.
//! Text is drawn by [`Canvas`] with DejaVu Sans, embedded in the binary.

use std::path::Path;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::canvas::Canvas;
use super::format;

const FAMILY: &str = "sans-serif";

/// Chart width in pixels; the HTML shows charts at this size (or smaller on narrow screens).
pub const WIDTH: u32 = 900;
/// Height of most charts; bar charts with many rows grow taller.
pub const HEIGHT: u32 = 450;
const HEADER: u32 = 64;
/// Category axes use integer coordinates (plotters labels only those at chosen points): one
/// category or period is `STEP` units wide.
const STEP: i32 = 1000;

const INK: RGBColor = RGBColor(33, 37, 41);
const MUTED: RGBColor = RGBColor(98, 106, 114);
const GRID: RGBColor = RGBColor(226, 229, 233);
const AXIS: RGBColor = RGBColor(150, 156, 162);

/// Colours that stay distinguishable for colour-blind readers (Okabe and Ito).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(240, 228, 66),
];
pub const GOOD: RGBColor = RGBColor(0, 158, 115);
pub const BAD: RGBColor = RGBColor(213, 94, 0);
pub const NEUTRAL: RGBColor = RGBColor(0, 114, 178);

/// One named series of values: a line, or one bar per category.
pub struct Series {
    pub name: String,
    pub color: RGBColor,
    pub values: Vec<Option<f64>>,
}

/// A line chart over consecutive periods (months).
pub struct LineChart {
    pub title: String,
    pub subtitle: String,
    pub periods: Vec<String>,
    pub series: Vec<Series>,
    pub y_axis: String,
    /// Periods that the data cover only in part (shaded and marked "partial").
    pub partial: Vec<usize>,
}

/// Horizontal bars: one row per category, top to bottom, one bar per series in each row.
pub struct BarChart {
    pub title: String,
    pub subtitle: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    pub x_axis: String,
    /// Write each bar's value at its end; `format::count` for counts, else `format::compact`.
    pub value_labels: Option<fn(f64) -> String>,
}

fn plot_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart failed: {error}")
}

fn text(size: u32, color: &RGBColor) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(color)
}

/// Draws with `draw` on a white canvas of `width`×`height` and writes it to `path` as PNG.
fn render(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<Canvas<'_>, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = Canvas::new(&mut pixels, (width, height))?.into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        draw(&root)?;
        root.present().map_err(plot_error)?;
    }
    write_png(path, width, height, &pixels)
}

fn write_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("could not create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().with_context(|| format!("could not write {}", path.display()))?;
    writer.write_image_data(rgb).with_context(|| format!("could not write {}", path.display()))?;
    writer.finish().with_context(|| format!("could not write {}", path.display()))?;
    Ok(())
}

/// Title, subtitle and legend above the plot; returns the area left for the plot.
fn header<'a>(
    root: &DrawingArea<Canvas<'a>, Shift>,
    title: &str,
    subtitle: &str,
    series: &[Series],
) -> anyhow::Result<DrawingArea<Canvas<'a>, Shift>> {
    let (top, plot) = root.split_vertically(HEADER);
    let left = text(20, &INK).pos(Pos::new(HPos::Left, VPos::Top));
    top.draw(&Text::new(title.to_string(), (16, 10), left)).map_err(plot_error)?;
    let small = text(13, &MUTED).pos(Pos::new(HPos::Left, VPos::Top));
    top.draw(&Text::new(subtitle.to_string(), (16, 38), small)).map_err(plot_error)?;
    // Legend, right-aligned on the title's line.
    if series.len() > 1 {
        let style = text(13, &INK).pos(Pos::new(HPos::Left, VPos::Top));
        let widths: Vec<i32> = series
            .iter()
            .map(|s| root.estimate_text_size(&s.name, &style).map(|(w, _)| w as i32 + 36))
            .collect::<Result<_, _>>()
            .map_err(plot_error)?;
        let mut x = WIDTH as i32 - 16 - widths.iter().sum::<i32>();
        for (s, w) in series.iter().zip(widths) {
            top.draw(&Rectangle::new([(x, 14), (x + 14, 26)], s.color.filled())).map_err(plot_error)?;
            top.draw(&Text::new(s.name.clone(), (x + 20, 13), style.clone())).map_err(plot_error)?;
            x += w;
        }
    }
    Ok(plot)
}

fn no_data(area: &DrawingArea<Canvas<'_>, Shift>) -> anyhow::Result<()> {
    let (width, height) = area.dim_in_pixel();
    let style = text(16, &MUTED).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw(&Text::new("no rows in the warehouse yet", (width as i32 / 2, height as i32 / 2), style))
        .map_err(plot_error)
}

fn max_value(series: &[Series]) -> f64 {
    series.iter().flat_map(|s| s.values.iter().flatten()).fold(0.0, |a, &b| a.max(b))
}

/// Writes a line chart with a dot on every value.
pub fn line_chart(path: &Path, chart: &LineChart) -> anyhow::Result<()> {
    render(path, (WIDTH, HEIGHT), |root| {
        let area = header(root, &chart.title, &chart.subtitle, &chart.series)?;
        let n = chart.periods.len();
        if n == 0 {
            return no_data(&area);
        }
        let top = (max_value(&chart.series) * 1.08).max(1.0);
        let step = n.div_ceil(12).max(1);
        let at = |i: usize| i as i32 * STEP;
        let ticks: Vec<i32> = (0..n).step_by(step).map(at).collect();
        let mut plot = ChartBuilder::on(&area)
            .margin_left(12)
            .margin_right(24)
            .margin_bottom(8)
            .x_label_area_size(48)
            .y_label_area_size(72)
            .build_cartesian_2d((-STEP / 2..at(n) - STEP / 2).with_key_points(ticks), 0f64..top)
            .map_err(plot_error)?;
        let period = |v: &i32| {
            usize::try_from((v + STEP / 2).div_euclid(STEP))
                .ok()
                .and_then(|i| chart.periods.get(i))
                .cloned()
                .unwrap_or_default()
        };
        let amount = |v: &f64| format::compact(*v);
        plot.configure_mesh()
            .disable_x_mesh()
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(AXIS)
            .x_labels(n)
            .x_label_formatter(&period)
            .y_labels(8)
            .y_label_formatter(&amount)
            .y_desc(chart.y_axis.as_str())
            .label_style(text(13, &INK))
            .axis_desc_style(text(13, &MUTED))
            .draw()
            .map_err(plot_error)?;
        let shade = RGBColor(120, 126, 132).mix(0.1).filled();
        let note = text(11, &MUTED).pos(Pos::new(HPos::Center, VPos::Top));
        for &i in chart.partial.iter().filter(|&&i| i < n) {
            let band = Rectangle::new([(at(i) - STEP / 2, 0.0), (at(i) + STEP / 2, top)], shade);
            plot.draw_series(std::iter::once(band)).map_err(plot_error)?;
            let label = EmptyElement::at((at(i), top)) + Text::new("partial", (0, 4), note.clone());
            plot.draw_series(std::iter::once(label)).map_err(plot_error)?;
        }
        for series in &chart.series {
            // A gap (a month without sales in this currency) breaks the line.
            let mut run: Vec<(i32, f64)> = Vec::new();
            let mut runs = Vec::new();
            for (i, value) in series.values.iter().enumerate() {
                match value {
                    Some(v) => run.push((at(i), *v)),
                    None if !run.is_empty() => runs.push(std::mem::take(&mut run)),
                    None => {}
                }
            }
            if !run.is_empty() {
                runs.push(run);
            }
            for points in runs {
                let line = LineSeries::new(points.iter().copied(), series.color.stroke_width(3));
                plot.draw_series(line).map_err(plot_error)?;
                let dots = points.iter().map(|&p| Circle::new(p, 4, series.color.filled()));
                plot.draw_series(dots).map_err(plot_error)?;
            }
        }
        Ok(())
    })
}

/// Widest category label, in pixels; longer ones are cut with "…".
const MAX_LABEL: u32 = 300;

/// `label`, shortened with "…" to fit in `max` pixels.
fn fit(area: &DrawingArea<Canvas<'_>, Shift>, label: &str, style: &TextStyle<'_>, max: u32) -> anyhow::Result<String> {
    let width = |s: &str| area.estimate_text_size(s, style).map(|(w, _)| w).map_err(plot_error);
    if width(label)? <= max {
        return Ok(label.to_string());
    }
    let mut chars: Vec<char> = label.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let shorter = format!("{}…", chars.iter().collect::<String>().trim_end());
        if width(&shorter)? <= max {
            return Ok(shorter);
        }
    }
    Ok("…".into())
}

/// Height that gives every row of a bar chart room for its bars.
fn bar_chart_height(categories: usize, series: usize) -> u32 {
    let rows = categories * (series.max(1) * 10 + 12);
    (HEADER as usize + 80 + rows).clamp(HEIGHT as usize, 1200) as u32
}

/// Writes a horizontal bar chart (rows top to bottom in the order given) and returns its height.
pub fn bar_chart(path: &Path, chart: &BarChart) -> anyhow::Result<u32> {
    let n = chart.categories.len();
    let k = chart.series.len().max(1);
    let height = bar_chart_height(n, k);
    render(path, (WIDTH, height), |root| {
        let area = header(root, &chart.title, &chart.subtitle, &chart.series)?;
        if n == 0 {
            return no_data(&area);
        }
        let label_style = text(13, &INK);
        let mut categories = Vec::with_capacity(n);
        let mut label_width = 40;
        for category in &chart.categories {
            let label = fit(root, category, &label_style, MAX_LABEL)?;
            let (w, _) = root.estimate_text_size(&label, &label_style).map_err(plot_error)?;
            label_width = label_width.max(w + 18);
            categories.push(label);
        }
        let headroom = if chart.value_labels.is_some() { 1.16 } else { 1.04 };
        let right = (max_value(&chart.series) * headroom).max(1.0);
        // Row i (0 = first category) is drawn at the top: from (n-1-i)·STEP to (n-i)·STEP.
        let centre = |i: usize| (n - 1 - i) as i32 * STEP + STEP / 2;
        let centres: Vec<i32> = (0..n).map(centre).collect();
        let mut plot = ChartBuilder::on(&area)
            .margin_left(12)
            .margin_right(24)
            .margin_bottom(8)
            .x_label_area_size(48)
            .y_label_area_size(label_width)
            .build_cartesian_2d(0f64..right, (0..n as i32 * STEP).with_key_points(centres))
            .map_err(plot_error)?;
        let category = |v: &i32| {
            let row = usize::try_from(v.div_euclid(STEP)).ok().and_then(|r| (n - 1).checked_sub(r));
            row.and_then(|i| categories.get(i)).cloned().unwrap_or_default()
        };
        let amount = |v: &f64| format::compact(*v);
        plot.configure_mesh()
            .disable_y_mesh()
            .bold_line_style(GRID)
            .light_line_style(WHITE)
            .axis_style(AXIS)
            .y_labels(n)
            .y_label_formatter(&category)
            .x_labels(8)
            .x_label_formatter(&amount)
            .x_desc(chart.x_axis.as_str())
            .label_style(label_style.clone())
            .axis_desc_style(text(13, &MUTED))
            .draw()
            .map_err(plot_error)?;
        // Bars share 80% of a row, at most 24 px each.
        let row_px = f64::from(area.dim_in_pixel().1.saturating_sub(56)) / n as f64;
        let bar = f64::from(STEP) * (0.8 / k as f64).min(24.0 / row_px.max(1.0));
        let gap = if k > 1 { bar * 0.12 } else { 0.0 };
        let value_style = text(12, &MUTED).pos(Pos::new(HPos::Left, VPos::Center));
        for (j, series) in chart.series.iter().enumerate() {
            let mut bars = Vec::new();
            let mut labels = Vec::new();
            for (i, value) in series.values.iter().enumerate() {
                let Some(value) = *value else { continue };
                let top = f64::from(centre(i)) + bar * k as f64 / 2.0 - bar * j as f64 - gap / 2.0;
                let bottom = top - bar + gap;
                let (top, bottom) = (top.round() as i32, bottom.round() as i32);
                bars.push(Rectangle::new([(0.0, bottom), (value, top)], series.color.filled()));
                if let Some(label) = chart.value_labels {
                    let at = (value, (top + bottom) / 2);
                    labels.push(EmptyElement::at(at) + Text::new(label(value), (4, 0), value_style.clone()));
                }
            }
            plot.draw_series(bars).map_err(plot_error)?;
            plot.draw_series(labels).map_err(plot_error)?;
        }
        Ok(())
    })?;
    Ok(height)
}
