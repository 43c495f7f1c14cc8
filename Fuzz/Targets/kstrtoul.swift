import APMatrixModel

// The number parser of every assign/unassign/remove write (`kstrtoul` base 0):
// an accepted value reads back the same in decimal and in hex.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if case .success(let v) = KernelParse.kstrtoul(bytes) {
        precondition(KernelParse.kstrtoul(Array("\(v)\n".utf8)) == .success(v))
        precondition(KernelParse.kstrtoul(Array("0x\(String(v, radix: 16))".utf8)) == .success(v))
    }
    _ = KernelParse.scanInt(bytes, autoBase: true)
    _ = KernelParse.scanInt(bytes, autoBase: false)
    return 0
}
