//! The gRPC contract between Uchat's services: .proto files and generated tonic code.
//!
//! Not built yet: its issue describes what goes here.
