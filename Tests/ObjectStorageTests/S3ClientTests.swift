import ArchwayTesting
import Foundation
import NIOCore
import OCI
import ObjectStorage
import RegistryClient
import Testing

/// A client of a bucket on the harness's radosgw.
func s3Client(_ gateway: RadosGateway, bucket: String = "archway", secret: String? = nil) -> S3Client {
    S3Client(
        location: S3Location(endpoint: gateway.url, region: "us-east-1", bucket: bucket, pathStyle: true)!,
        credentials: AWSCredentials(accessKeyID: gateway.accessKey, secretAccessKey: secret ?? gateway.secretKey))
}

/// Bytes that differ from block to block (each 64 KiB block starts with its number and the
/// seed), so a part sent twice or out of order shows. Built by blocks: fast in a debug build.
func patterned(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
    let block = (0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 % 251) }
    var buffer = ByteBuffer()
    buffer.reserveCapacity(count)
    var number: UInt64 = 0
    while buffer.readableBytes < count {
        let start = buffer.writerIndex
        buffer.writeBytes(block.prefix(count - buffer.readableBytes))
        var stamp = ByteBuffer()
        stamp.writeInteger(number &* 31 &+ UInt64(seed))
        buffer.setBuffer(stamp.getSlice(at: 0, length: min(8, buffer.writerIndex - start))!, at: start)
        number += 1
    }
    return buffer
}

/// The S3 operations Archway uses, against radosgw.
@Suite(.serialized) struct S3ClientTests {
    @Test func objectsAreWrittenReadListedAndDeleted() async throws {
        try await withRadosGateway { gateway in
            let client = s3Client(gateway)
            try await client.createBucket()
            try await client.createBucket()  // ours already: fine
            try await client.checkBucket()
            let content = patterned(70_000)
            try await client.put("blobs/sha256/one", content)
            #expect(try await client.length(of: "blobs/sha256/one") == 70_000)
            #expect(try await client.length(of: "blobs/sha256/none") == nil)
            let whole = try await client.get("blobs/sha256/one")
            #expect(try await whole?.body.collect(upTo: 1 << 20) == content)
            let part = try await client.get("blobs/sha256/one", range: 10...19)
            #expect(part?.length == 10)
            #expect(try await part?.body.collect(upTo: 100) == content.getSlice(at: 10, length: 10))
            #expect(try await client.get("blobs/sha256/none") == nil)
            // Five objects listed two by two: three pages, every key once.
            for index in 2...5 { try await client.put("blobs/sha256/k\(index)", ByteBuffer(string: "\(index)")) }
            try await client.put("other/k", ByteBuffer(string: "not under the prefix"))
            let listed = try await client.objects(prefix: "blobs/", pageSize: 2)
            #expect(listed.map(\.key) == ["blobs/sha256/k2", "blobs/sha256/k3", "blobs/sha256/k4", "blobs/sha256/k5", "blobs/sha256/one"])
            #expect(listed.last?.size == 70_000)
            try await client.delete("blobs/sha256/one")
            try await client.delete("blobs/sha256/one")  // gone already: fine
            #expect(try await client.length(of: "blobs/sha256/one") == nil)
        }
    }

    @Test func aMultipartObjectIsInvisibleUntilCompleted() async throws {
        try await withRadosGateway { gateway in
            let client = s3Client(gateway)
            try await client.createBucket()
            let first = patterned(5 << 20, seed: 1)
            let last = patterned(1234, seed: 2)
            let id = try await client.createMultipartUpload("blobs/sha256/big")
            let etag1 = try await client.uploadPart("blobs/sha256/big", uploadID: id, number: 1, first)
            let etag2 = try await client.uploadPart("blobs/sha256/big", uploadID: id, number: 2, last)
            #expect(try await client.length(of: "blobs/sha256/big") == nil, "nothing visible before completion")
            #expect(try await client.multipartUploads(prefix: "blobs/").map(\.uploadID) == [id])
            try await client.completeMultipartUpload("blobs/sha256/big", uploadID: id, parts: [(1, etag1), (2, etag2)])
            var expected = first
            var tail = last
            expected.writeBuffer(&tail)
            #expect(try await client.get("blobs/sha256/big")?.body.collect(upTo: 8 << 20) == expected)
            #expect(try await client.multipartUploads(prefix: "blobs/").isEmpty)

            // Aborted: no object, no upload; completing it afterwards is refused.
            let abandoned = try await client.createMultipartUpload("blobs/sha256/abandoned")
            let etag = try await client.uploadPart("blobs/sha256/abandoned", uploadID: abandoned, number: 1, last)
            try await client.abortMultipartUpload("blobs/sha256/abandoned", uploadID: abandoned)
            #expect(try await client.multipartUploads(prefix: "blobs/").isEmpty)
            #expect(try await client.length(of: "blobs/sha256/abandoned") == nil)
            // (AWS says NoSuchUpload; radosgw InternalError: either way it is refused.)
            await #expect(throws: S3Error.self) {
                try await client.completeMultipartUpload("blobs/sha256/abandoned", uploadID: abandoned, parts: [(1, etag)])
            }
            #expect(try await client.length(of: "blobs/sha256/abandoned") == nil)
        }
    }

    @Test func failuresAreS3ErrorsThatSayWhat() async throws {
        try await withRadosGateway { gateway in
            try await s3Client(gateway).createBucket()
            let wrongKey = await #expect(throws: S3Error.self) { try await s3Client(gateway, secret: "wrong").put("x", ByteBuffer()) }
            #expect(wrongKey?.status == 403 && wrongKey?.code == "SignatureDoesNotMatch", "\(String(describing: wrongKey))")
            let noBucket = await #expect(throws: S3Error.self) { try await s3Client(gateway, bucket: "missing").checkBucket() }
            #expect(noBucket?.status == 404, "\(String(describing: noBucket))")
            await gateway.stopGateway()
            let down = await #expect(throws: S3Error.self) { try await s3Client(gateway).checkBucket() }
            #expect(down?.status == 0 && down?.code == "Unreachable", "\(String(describing: down))")
            try await gateway.startGateway()
            try await s3Client(gateway).checkBucket()
        }
    }

    @Test func aPresignedURLReadsWithoutCredentialsUntilItExpires() async throws {
        try await withRadosGateway { gateway in
            let client = s3Client(gateway)
            try await client.createBucket()
            try await client.put("blobs/sha256/p", ByteBuffer(string: "presigned"))
            let url = client.presignedURL("blobs/sha256/p", expires: 60)
            let fetched = try await httpRequest("GET", url)
            #expect(fetched.status == 200 && fetched.bodyText == "presigned", "\(fetched.status) \(fetched.bodyText)")
            let past = S3Client(
                location: client.location, credentials: AWSCredentials(accessKeyID: gateway.accessKey, secretAccessKey: gateway.secretKey),
                now: { Date().addingTimeInterval(-120) })
            #expect(try await httpRequest("GET", past.presignedURL("blobs/sha256/p", expires: 60)).status == 403)
        }
    }
}
