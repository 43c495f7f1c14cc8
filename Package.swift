// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "apmatrix",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "apmatrix", targets: ["apmatrix"]),
        // The layers, for the Benchmarks package.
        .library(name: "APMatrixModel", targets: ["APMatrixModel"]),
        .library(name: "APMatrixSysfs", targets: ["APMatrixSysfs"]),
        .library(name: "APMatrixRuntime", targets: ["APMatrixRuntime"]),
        .library(name: "APMatrixFUSE", targets: ["APMatrixFUSE"]),
        // The LD_PRELOAD library of `apmatrix exec --udev` (statfs with sysfs's magic under /sys).
        .library(name: "apmatrix-sysfs-magic", type: .dynamic, targets: ["CSysfsMagic"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
    ],
    targets: [
        // libfuse3 as a system library: only a shim header that fixes FUSE_USE_VERSION.
        .systemLibrary(name: "CFuse", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // unshare(2) for `apmatrix exec`, which Swift's Glibc module does not declare.
        .target(name: "CNamespace"),
        // The statfs family answering SYSFS_MAGIC under /sys, for libudev in `exec --udev`; plain C, no Swift.
        .target(name: "CSysfsMagic"),
        // The system's libsqlite3 (the state database), likewise.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // The pure model: bitmaps, parsing, the AP bus, vfio_ap, guests. No I/O, no Foundation.
        .target(name: "APMatrixModel", dependencies: [
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // The sysfs tree as a view of the model: paths, formats, permissions, symlinks.
        .target(name: "APMatrixSysfs", dependencies: ["APMatrixModel"]),
        // Admin tools that read (and for plan, simulate) through a sysfs directory only: ls, matrix, explain, plan, the mdevctl callout.
        .target(name: "APMatrixTools", dependencies: ["APMatrixModel", "APMatrixSysfs"]),
        // The one runtime: the host behind one lock, the event log and its
        // delivery, the guests' clocks and edges, durable state, host files.
        .target(name: "APMatrixRuntime", dependencies: [
            "APMatrixModel", "APMatrixSysfs", "CSQLite",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The FUSE adapter: libfuse3 high-level API over the runtime's sysfs trees.
        .target(name: "APMatrixFUSE", dependencies: ["CFuse", "APMatrixRuntime", "APMatrixSysfs"]),
        // The migration channel: QEMU's migration stream over TCP between two hosts' guests.
        .target(name: "APMatrixMigration", dependencies: ["APMatrixModel", "APMatrixRuntime"]),
        // The guest monitor: QMP on a unix socket per guest.
        .target(name: "APMatrixQMP", dependencies: ["APMatrixModel", "APMatrixRuntime"]),
        // The control API (JSON over HTTP) and the web UI.
        .target(name: "APMatrixServer", dependencies: [
            "APMatrixModel", "APMatrixSysfs", "APMatrixRuntime",
            .product(name: "SystemPackage", package: "swift-system"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], resources: [.copy("Resources")]),
        .executableTarget(name: "apmatrix", dependencies: [
            "APMatrixModel", "APMatrixSysfs", "APMatrixRuntime", "APMatrixFUSE", "APMatrixQMP", "APMatrixServer", "APMatrixTools",
            "APMatrixMigration", "CNamespace",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The test kit: the fixtures, the mount, `serve` as a process, subprocesses
        // and errno-returning file I/O that every test target shares.
        .target(name: "APMatrixTesting", dependencies: ["APMatrixModel", "APMatrixRuntime", "APMatrixFUSE"]),

        // The model's rules, driven by typed operations and by the sysfs store functions (text, as a client writes it).
        .testTarget(name: "APMatrixModelTests", dependencies: ["APMatrixModel", "APMatrixSysfs", "APMatrixTesting"]),
        .testTarget(name: "APMatrixRuntimeTests", dependencies: ["APMatrixModel", "APMatrixRuntime", "APMatrixSysfs", "APMatrixTesting", "CSQLite"]),
        .testTarget(name: "APMatrixSysfsTests", dependencies: ["APMatrixModel", "APMatrixSysfs", "APMatrixRuntime", "APMatrixTesting"]),
        .testTarget(name: "APMatrixServerTests", dependencies: [
            "APMatrixModel", "APMatrixRuntime", "APMatrixServer", "APMatrixTesting",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
        .testTarget(name: "APMatrixQMPTests", dependencies: ["APMatrixModel", "APMatrixRuntime", "APMatrixQMP", "APMatrixTesting"]),
        .testTarget(name: "APMatrixMountTests", dependencies: [
            "APMatrixModel", "APMatrixSysfs", "APMatrixRuntime", "APMatrixFUSE", "APMatrixTools", "APMatrixTesting", "apmatrix", "CFuse", "CSQLite",
        ]),
    ]
)
