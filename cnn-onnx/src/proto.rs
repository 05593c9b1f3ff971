//! The ONNX protobuf types, generated at build time from `proto/onnx.proto`
//! (public so that tools and tests can build or read ONNX graphs with the
//! same types the exporter and the importer use).
#![allow(clippy::all, dead_code, missing_docs)]
include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
