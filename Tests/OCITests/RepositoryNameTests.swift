import OCI
import Testing

struct RepositoryNameTests {
    @Test(arguments: [
        ("nginx", ["nginx"]),
        ("library/nginx", ["library", "nginx"]),
        ("org/team/app", ["org", "team", "app"]),
        ("a", ["a"]),
        ("0", ["0"]),
        ("a.b_c__d-e---f", ["a.b_c__d-e---f"]),
        ("thedoh/lisa19", ["thedoh", "lisa19"]),
        ("a/b/c/d/e/f/g", ["a", "b", "c", "d", "e", "f", "g"]),
        (String(repeating: "a", count: 255), [String(repeating: "a", count: 255)]),
    ])
    func acceptsSpecNames(text: String, components: [String]) throws {
        let name = try RepositoryName(text)
        #expect(name.value == text)
        #expect(name.description == text)
        #expect(name.components.map(String.init) == components)
        #expect(String(name.firstComponent) == components[0])
        #expect(name.droppingFirstComponent?.value == (components.count > 1 ? components.dropFirst().joined(separator: "/") : nil))
    }

    @Test(arguments: [
        ("", "empty"),
        (String(repeating: "a", count: 256), "limit is 255"),
        (String(repeating: "ab/", count: 90) + "c", "limit is 255"),
        ("Nginx", "lowercase"),
        ("library/UPPER", "lowercase"),
        ("/nginx", "empty path component"),
        ("nginx/", "empty path component"),
        ("a//b", "empty path component"),
        ("..", "start and end"),
        ("a/../b", "start and end"),
        ("./a", "start and end"),
        (".a", "start and end"),
        ("a.", "start and end"),
        ("-a", "start and end"),
        ("a_", "start and end"),
        ("a..b", "separator"),
        ("a___b", "separator"),
        ("a._b", "separator"),
        ("a-.b", "separator"),
        ("a%2eb", "only lowercase"),
        ("%2e%2e/etc", "start and end"),
        ("a b", "only lowercase"),
        ("a\0b", "only lowercase"),
        ("a:b", "only lowercase"),
        ("a@b", "only lowercase"),
        ("a\\b", "only lowercase"),
        ("nginx:latest", "only lowercase"),
        ("café", "start and end"),
        ("caféx", "only lowercase"),
        ("ｎｇｉｎｘ", "start and end"),
    ])
    func refusesOtherNames(text: String, reason: String) {
        let error = #expect(throws: RegistryError.self) { try RepositoryName(text) }
        #expect(error?.code == .nameInvalid)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
        #expect((error?.message.count ?? .max) < 300)
    }

    @Test func ordersByValue() throws {
        let names = try ["b/a", "a/b", "a"].map { name throws(RegistryError) in try RepositoryName(name) }
        #expect(names.sorted().map(\.value) == ["a", "a/b", "b/a"])
    }
}
