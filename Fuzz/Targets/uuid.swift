import APMatrixModel

// `create` writes (`uuid_is_valid`): an accepted UUID is canonical lowercase
// and is accepted again as itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if case .success(let u) = KernelParse.mdevUUID(bytes) {
        let text = u.description
        precondition(text.utf8.count == 36 && text == text.lowercased())
        precondition(KernelParse.mdevUUID(Array(text.utf8)) == .success(u))
        precondition(MdevUUID(sysfsName: text) == u)
    }
    _ = APQN(sysfsName: String(decoding: bytes, as: UTF8.self))
    return 0
}
