// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Recur",
    products: [
        // The inference runtime, for Swift programs.
        .library(name: "Recur", targets: ["Recur"]),
        // Training (BPTT, optimizers, checkpoints). Applications that only run models never link it.
        .library(name: "RecurTraining", targets: ["RecurTraining"]),
        // The C ABI of include/recur.h. `make install` lays it out as lib/librecur.so.
        .library(name: "RecurC", type: .dynamic, targets: ["RecurC"]),
        // The `recur` command.
        .executable(name: "recur", targets: ["RecurCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // libdeflate's CRC-32 (the file checksum).
        .systemLibrary(
            name: "CLibDeflate",
            path: "Sources/CLibDeflate",
            pkgConfig: "libdeflate",
            providers: [.apt(["libdeflate-dev"])]
        ),
        // Matrix-vector kernels in C with intrinsics (AVX2, AVX-512 VNNI, scalar), chosen at run time.
        .target(name: "CRecurKernels"),
        // include/recur.h as a module (Sources/CRecurABI/include/recur.h links to it), so that RecurC
        // implements the header's declarations and uses its types and constants, and Recur reads the
        // versions from it.
        .target(name: "CRecurABI"),
        .target(name: "Recur", dependencies: ["COpenBLAS", "CLibDeflate", "CRecurKernels", "CRecurABI"]),
        .target(name: "RecurC", dependencies: ["Recur", "CRecurABI"]),
        .target(name: "RecurTraining", dependencies: ["Recur", "COpenBLAS"]),
        .executableTarget(
            name: "RecurCLI",
            dependencies: [
                "Recur", "RecurTraining",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "RecurTests", dependencies: ["Recur", "RecurTraining"]),
    ],
    swiftLanguageModes: [.v5]
)
