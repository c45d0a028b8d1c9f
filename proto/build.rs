//! Compiles the .proto files with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/uchat/common/v1/common.proto",
        "proto/uchat/account/v1/account.proto",
        "proto/uchat/social/v1/social.proto",
        "proto/uchat/message/v1/message.proto",
        "proto/uchat/gateway/v1/push.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
