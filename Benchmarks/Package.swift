// swift-tools-version: 6.1
// Benchmarks live in their own package so that `swift test` of the main
// package never builds them. Run: cd Benchmarks && swift run -c release apmatrix-bench
import PackageDescription

let package = Package(
    name: "apmatrix-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "apmatrix", path: "..")],
    targets: [
        .executableTarget(name: "apmatrix-bench", dependencies: [
            .product(name: "APMatrixModel", package: "apmatrix"),
            .product(name: "APMatrixSysfs", package: "apmatrix"),
            .product(name: "APMatrixRuntime", package: "apmatrix"),
            .product(name: "APMatrixFUSE", package: "apmatrix"),
        ]),
    ]
)
