import OCI
import Policies
import Testing

@Suite struct PolicySetTests {
    @Test func anEmptySetPassesEveryPullThrough() throws {
        #expect(PolicySet.empty.decision(repository: "docker.io/library/nginx", tag: try Tag("1.27")) == .passThrough)
    }
}
