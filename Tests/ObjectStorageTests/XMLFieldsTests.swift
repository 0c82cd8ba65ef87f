import Testing

@testable import ObjectStorage

struct XMLFieldsTests {
    @Test func readsElementsInOrderAndDecodesEntities() {
        let xml = """
            <?xml version="1.0"?><ListBucketResult><IsTruncated>true</IsTruncated>
            <Contents><Key>blobs/a&amp;b</Key><Size>12</Size></Contents>
            <Contents><Key>blobs/&#x41;&#66;&lt;</Key><Size>0</Size></Contents>
            <NextContinuationToken>t&quot;1</NextContinuationToken></ListBucketResult>
            """
        let contents = XMLFields.elements("Contents", in: xml[...])
        #expect(contents.count == 2)
        #expect(contents.map { XMLFields.first("Key", in: $0) } == ["blobs/a&b", "blobs/AB<"])
        #expect(XMLFields.first("IsTruncated", in: xml[...]) == "true")
        #expect(XMLFields.first("NextContinuationToken", in: xml[...]) == "t\"1")
    }

    @Test func aNameThatStartsAnotherIsNotIt() {
        // <Key> must not match <KeyMarker>; an empty element is empty.
        let xml = "<Upload><KeyMarker>no</KeyMarker><Key>yes</Key><UploadId/></Upload>"
        #expect(XMLFields.elements("Key", in: xml[...]) == ["yes"])
        #expect(XMLFields.first("UploadId", in: xml[...]) == "")
    }

    @Test func brokenInputGivesWhatIsComplete() {
        #expect(XMLFields.elements("Key", in: "<Key>one</Key><Key>unterminated"[...]) == ["one"])
        #expect(XMLFields.unescape("a & b &unknown; &#xZZ; &#1114112;"[...]) == "a & b &unknown; &#xZZ; &#1114112;")
        #expect(XMLFields.escape("<a href=\"x\">'&'</a>") == "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;")
    }

    @Test func locationsAreChecked() {
        #expect(S3Location(endpoint: "http://127.0.0.1:7480", region: "us-east-1", bucket: "archway", pathStyle: true) != nil)
        #expect(S3Location(endpoint: "https://s3.eu-west-1.amazonaws.com/", region: "eu-west-1", bucket: "a.b-c", pathStyle: false) != nil)
        for endpoint in ["ftp://host", "http://", "http://host/path", "http://user@host", "host:7480", "http://:80"] {
            #expect(S3Location(endpoint: endpoint, region: "r", bucket: "archway", pathStyle: true) == nil, "\(endpoint)")
        }
        for bucket in ["ab", "Archway", "-archway", "archway-", "arch_way", String(repeating: "a", count: 64), "a/b"] {
            #expect(!S3Location.isValidBucket(bucket), "\(bucket)")
        }
    }
}
