//! Report figures drawn with plotters, each rendered to PNG and SVG: line panels (losses
//! per epoch, with optional ±1 std bands) and forest panels (final metrics with error bars).
//!
//! Slightly over 500 lines with its tests: the two panel kinds share the axis, legend and
//! font set-up here, and splitting them would spread that across files.
//!
//! Text uses the bundled DejaVu Sans, so PNGs come out identical on every machine.
use std::sync::Once;

use image::{ImageEncoder, codecs::png::PngEncoder};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::ReportError;
use super::stats::Summary;

static FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are compiled in and known to parse; a failure would show as missing text.
        let _ = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT);
    });
}

/// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
    RGBColor(0, 0, 0),
];

pub fn color(index: usize) -> RGBColor {
    if index < PALETTE.len() {
        PALETTE[index]
    } else {
        let (r, g, b) = Palette99::pick(index).rgb();
        RGBColor(r, g, b)
    }
}

/// One rendered figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem under `figures/`.
    pub name: String,
    pub title: String,
    pub caption: String,
    pub png: Vec<u8>,
    pub svg: String,
}

/// A drawing that can go to any plotters backend.
pub trait Plot {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String>;
    fn size(&self) -> (u32, u32);
}

fn drawing<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// Renders `plot` to PNG bytes and an SVG document.
pub fn render(
    plot: &impl Plot,
    name: &str,
    title: &str,
    caption: &str,
) -> Result<Figure, ReportError> {
    register_font();
    let (width, height) = plot.size();
    let failed = |detail: String| ReportError::Figure {
        name: name.to_string(),
        detail,
    };
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(drawing(e)))?;
        plot.draw(&root).map_err(failed)?;
        root.present().map_err(|e| failed(drawing(e)))?;
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| failed(e.to_string()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(drawing(e)))?;
        plot.draw(&root).map_err(failed)?;
        root.present().map_err(|e| failed(drawing(e)))?;
    }
    Ok(Figure {
        name: name.to_string(),
        title: title.to_string(),
        caption: caption.to_string(),
        png,
        svg,
    })
}

/// A line with an optional ±1 std band: points are (x, mean, std).
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub color: RGBColor,
    pub dashed: bool,
    pub points: Vec<(f64, f64, f64)>,
    pub band: bool,
}

#[derive(Debug, Clone)]
pub struct LinePanel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub lines: Vec<Line>,
}

/// Panels side by side (or in rows of `columns`).
#[derive(Debug, Clone)]
pub struct LinePanels {
    pub panels: Vec<LinePanel>,
    pub columns: usize,
    pub panel_size: (u32, u32),
}

impl LinePanels {
    /// Panels three to a row at the size a run's own figure uses.
    pub fn in_rows_of_three(panels: Vec<LinePanel>) -> Self {
        Self {
            panels,
            columns: 3,
            panel_size: (430, 320),
        }
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let span = (hi - lo).abs().max(hi.abs() * 1e-3).max(1e-9);
    (lo - 0.06 * span, hi + 0.06 * span)
}

fn grid_of<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    count: usize,
    columns: usize,
) -> Vec<DrawingArea<DB, Shift>> {
    let columns = columns.clamp(1, count.max(1));
    let rows = count.div_ceil(columns).max(1);
    area.split_evenly((rows, columns))
        .into_iter()
        .take(count)
        .collect()
}

fn empty_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<(), String> {
    let (w, h) = area.dim_in_pixel();
    area.draw(&Text::new(
        format!("{title}: no data yet"),
        (w as i32 / 2 - 80, h as i32 / 2),
        (FAMILY, 15).into_font().color(&BLACK.mix(0.6)),
    ))
    .map_err(drawing)
}

impl LinePanel {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let values: Vec<&(f64, f64, f64)> = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        if values.is_empty() {
            return empty_panel(area, &self.title);
        }
        let band = |p: &(f64, f64, f64)| if p.2.is_finite() { p.2 } else { 0.0 };
        let (x0, x1) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
        let (y0, y1) = values.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
            (a.min(p.1 - band(p)), b.max(p.1 + band(p)))
        });
        let (x0, x1) = if x0 == x1 {
            (x0 - 1.0, x1 + 1.0)
        } else {
            (x0, x1)
        };
        let (y0, y1) = padded(y0, y1);
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FAMILY, 17))
            .margin(12)
            .x_label_area_size(38)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(drawing)?;
        let integer_x = values.iter().all(|p| p.0.fract() == 0.0);
        let x_labels = if integer_x {
            ((x1 - x0) as usize + 1).clamp(2, 10)
        } else {
            8
        };
        chart
            .configure_mesh()
            .x_labels(x_labels)
            .x_label_formatter(&|v| {
                if integer_x {
                    format!("{v:.0}")
                } else {
                    // Ticks such as 0.30000000000000004 read as 0.3.
                    let text = format!("{v:.4}");
                    text.trim_end_matches('0').trim_end_matches('.').to_string()
                }
            })
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FAMILY, 12))
            .axis_desc_style((FAMILY, 13))
            .light_line_style(BLACK.mix(0.06))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(drawing)?;
        for line in &self.lines {
            let color = line.color;
            let points: Vec<(f64, f64)> = line
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|p| (p.0, p.1))
                .collect();
            if line.band {
                let upper = line
                    .points
                    .iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .map(|p| (p.0, p.1 + band(p)));
                let lower: Vec<(f64, f64)> = line
                    .points
                    .iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .map(|p| (p.0, p.1 - band(p)))
                    .collect();
                let outline: Vec<(f64, f64)> = upper.chain(lower.into_iter().rev()).collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        color.mix(0.18).filled(),
                    )))
                    .map_err(drawing)?;
            }
            let style = color.stroke_width(2);
            let series = if line.dashed {
                chart.draw_series(DashedLineSeries::new(points.clone(), 7, 5, style))
            } else {
                chart.draw_series(LineSeries::new(points.clone(), style))
            }
            .map_err(drawing)?;
            let dashed = line.dashed;
            series.label(&line.name).legend(move |(x, y)| {
                if dashed {
                    PathElement::new(vec![(x, y), (x + 7, y), (x + 11, y), (x + 18, y)], style)
                } else {
                    PathElement::new(vec![(x, y), (x + 18, y)], style)
                }
            });
            if points.len() <= 30 {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 2, color.filled())))
                    .map_err(drawing)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FAMILY, 12))
            .draw()
            .map_err(drawing)
    }
}

impl Plot for LinePanels {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        for (panel, cell) in self
            .panels
            .iter()
            .zip(grid_of(area, self.panels.len(), self.columns))
        {
            panel.draw(&cell)?;
        }
        Ok(())
    }

    fn size(&self) -> (u32, u32) {
        let columns = self.columns.clamp(1, self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(columns).max(1);
        (
            self.panel_size.0 * columns as u32,
            self.panel_size.1 * rows as u32,
        )
    }
}

/// One row of a forest panel: a group's mean ± std and its runs' values.
#[derive(Debug, Clone)]
pub struct ForestRow {
    pub name: String,
    pub color: RGBColor,
    pub summary: Summary,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone)]
pub struct ForestPanel {
    pub title: String,
    pub rows: Vec<ForestRow>,
}

/// Final metrics: one panel per metric, groups down the side, mean with ±1 std bars and
/// each run as a small ring.
#[derive(Debug, Clone)]
pub struct ForestPanels {
    pub panels: Vec<ForestPanel>,
    pub columns: usize,
}

impl ForestPanels {
    fn label_width(&self) -> u32 {
        let longest = self
            .panels
            .iter()
            .flat_map(|p| p.rows.iter())
            .map(|r| r.name.chars().count())
            .max()
            .unwrap_or(8);
        (longest as u32 * 7 + 16).clamp(60, 320)
    }

    fn panel_height(&self) -> u32 {
        let rows = self.panels.iter().map(|p| p.rows.len()).max().unwrap_or(1);
        (110 + 34 * rows as u32).max(180)
    }
}

impl ForestPanel {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        label_width: u32,
    ) -> Result<(), String> {
        let extent: Vec<f64> = self
            .rows
            .iter()
            .flat_map(|r| {
                let s = r.summary;
                let spread = if s.std.is_finite() { s.std } else { 0.0 };
                r.values
                    .iter()
                    .copied()
                    .chain([s.mean - spread, s.mean + spread])
            })
            .filter(|v| v.is_finite())
            .collect();
        if extent.is_empty() {
            return empty_panel(area, &self.title);
        }
        let (lo, hi) = padded(
            extent.iter().copied().fold(f64::MAX, f64::min),
            extent.iter().copied().fold(f64::MIN, f64::max),
        );
        let n = self.rows.len();
        // Rows from the top in table order: row i sits at y = n - 1 - i.
        let y_of = |i: usize| (n - 1 - i) as f64;
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FAMILY, 16))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(label_width)
            .build_cartesian_2d(lo..hi, -0.6..(n as f64 - 0.4))
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_labels(5)
            .y_labels(0)
            .label_style((FAMILY, 12))
            .light_line_style(BLACK.mix(0.06))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(drawing)?;
        let base = area.get_base_pixel();
        for (i, row) in self.rows.iter().enumerate() {
            let y = y_of(i);
            let (px, py) = chart.backend_coord(&(lo, y));
            area.draw(&Text::new(
                row.name.clone(),
                (px - base.0 - 8, py - base.1),
                (FAMILY, 12)
                    .into_font()
                    .color(&BLACK)
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(drawing)?;
            let s = row.summary;
            let style = row.color.stroke_width(2);
            if s.mean.is_finite() {
                let spread = if s.std.is_finite() { s.std } else { 0.0 };
                chart
                    .draw_series(std::iter::once(ErrorBar::new_horizontal(
                        y,
                        s.mean - spread,
                        s.mean,
                        s.mean + spread,
                        style,
                        10,
                    )))
                    .map_err(drawing)?;
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (s.mean, y),
                        5,
                        row.color.filled(),
                    )))
                    .map_err(drawing)?;
            }
            chart
                .draw_series(
                    row.values
                        .iter()
                        .filter(|v| v.is_finite())
                        .map(|&v| Circle::new((v, y), 3, BLACK.mix(0.55))),
                )
                .map_err(drawing)?;
        }
        Ok(())
    }
}

impl Plot for ForestPanels {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let label_width = self.label_width();
        for (panel, cell) in self
            .panels
            .iter()
            .zip(grid_of(area, self.panels.len(), self.columns))
        {
            panel.draw(&cell, label_width)?;
        }
        Ok(())
    }

    fn size(&self) -> (u32, u32) {
        let columns = self.columns.clamp(1, self.panels.len().max(1));
        let rows = self.panels.len().div_ceil(columns).max(1);
        (
            (self.label_width() + 330) * columns as u32,
            self.panel_height() * rows as u32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_lines() -> LinePanels {
        LinePanels {
            panels: vec![LinePanel {
                title: "validation loss".into(),
                x_label: "epoch".into(),
                y_label: "loss".into(),
                lines: vec![Line {
                    name: "residual".into(),
                    color: color(0),
                    dashed: false,
                    points: (1..=10)
                        .map(|e| (e as f64, 100.0 / e as f64, 2.0))
                        .collect(),
                    band: true,
                }],
            }],
            columns: 1,
            panel_size: (400, 300),
        }
    }

    #[test]
    fn figures_render_to_png_and_svg_identically_each_time() {
        let first = render(&sample_lines(), "f", "t", "c").unwrap();
        let second = render(&sample_lines(), "f", "t", "c").unwrap();
        assert_eq!(first.png, second.png);
        let decoded = image::load_from_memory(&first.png).unwrap().to_rgb8();
        assert_eq!((decoded.width(), decoded.height()), (400, 300));
        // Something besides the white background was drawn: the line, axes and text.
        let ink = decoded.pixels().filter(|p| p.0 != [255, 255, 255]).count();
        assert!(ink > 2_000, "only {ink} non-white pixels");
        assert!(first.svg.starts_with("<svg") && first.svg.contains("validation loss"));
    }

    #[test]
    fn forest_panels_and_empty_panels_render() {
        let forest = ForestPanels {
            panels: vec![
                ForestPanel {
                    title: "PSNR".into(),
                    rows: vec![ForestRow {
                        name: "plain".into(),
                        color: color(1),
                        summary: Summary::of(&[20.0, 21.0]),
                        values: vec![20.0, 21.0],
                    }],
                },
                ForestPanel {
                    title: "SSIM".into(),
                    rows: vec![],
                },
            ],
            columns: 2,
        };
        let figure = render(&forest, "final", "t", "c").unwrap();
        let texts: Vec<&str> = figure
            .svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split('>').nth(1)?.split('<').next())
            .collect();
        assert!(texts.iter().any(|t| t.contains("no data yet")), "{texts:?}");
        assert!(texts.iter().any(|t| t.trim() == "plain"), "{texts:?}");
    }
}
