//! Capacity-plan reports (DESIGN §9). The simulator's planner (`mc-sim`, `ci/plan`) measures
//! candidate topologies under a forecast and fills a [`model::PlanReport`]; this crate turns one
//! into what a planner reads: Markdown, a self-contained HTML page with SVG charts, and JSON.
//! Pure and deterministic: the same report renders to the same bytes.
#![forbid(unsafe_code)]

pub mod model;
pub mod render;
