// The tests that go through a real FUSE mount, a real `apmatrix serve` and
// real clients. Their helpers are the test kit's (APMatrixTesting).

import APMatrixTesting
import Testing

/// Every mount test is nested in this suite, so the whole target runs one
/// test at a time: the machine has 2 cores, and subprocess-heavy tests
/// (mdevctl, serve, 8 concurrent writers) would otherwise race their timeouts.
@Suite(.serialized) struct MountTests {}
