import APMatrixQMP

// The QMP stream splitter: the same bytes cut at any point give the same
// values as fed at once, and a value never exceeds its limit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var whole = JSONStreamSplitter(maxBytes: 256, maxDepth: 8)
    let all = whole.feed(bytes)
    var cut = JSONStreamSplitter(maxBytes: 256, maxDepth: 8)
    let at = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    let parts = cut.feed(Array(bytes[..<at])) + cut.feed(Array(bytes[at...]))
    precondition(all == parts, "splitting depends on where the stream is cut")
    for case .success(let v) in all { precondition(v.count <= 256) }
    return 0
}
