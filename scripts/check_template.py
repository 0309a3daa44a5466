"""Checks the properties of template.yaml that keep pupils' data safe: EU regions only,
least-privilege function roles (serve decrypts, only ingest and consent make data keys, purge
never touches keys, no wildcard actions or resources), an encrypted private bucket with a
backstop lifecycle and no versioning, staged uploads expiring after a day and ingested from
their ObjectCreated events only, and no circular dependency among the resources SAM makes, a table with TTL, point-in-time recovery and KMS
encryption, and a rotating customer-managed key.

Usage: check_template.py [template.yaml]; exits 1 listing every property that does not hold.
"""

import copy
import os
import re
import sys

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

EU_REGIONS = {
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2",
    "eu-north-1", "eu-south-1", "eu-south-2",
}


def as_list(value):
    return value if isinstance(value, list) else [value]


def resources_of(template, kind):
    return {
        name: r.get("Properties", {})
        for name, r in template.get("Resources", {}).items()
        if r.get("Type") == kind
    }


def statements(function):
    for policy in as_list(function.get("Policies", [])):
        if isinstance(policy, dict):
            yield from as_list(policy.get("Statement", []))


def actions(function, service=None):
    found = set()
    for statement in statements(function):
        for action in as_list(statement.get("Action", [])):
            if service is None or str(action).startswith(service + ":"):
                found.add(action)
    return found


def check(template):
    problems = []

    def expect(condition, message):
        if not condition:
            problems.append(message)

    # EU regions only.
    rule = template.get("Rules", {}).get("EuRegionsOnly", {})
    asserts = rule.get("Assertions", [])
    expect(asserts, "no EuRegionsOnly rule")
    for assertion in asserts:
        contains = assertion.get("Assert", {}).get("Fn::Contains")
        expect(contains is not None, "EuRegionsOnly does not use Fn::Contains")
        if contains:
            regions, region = contains
            expect(set(regions) <= EU_REGIONS and regions, f"non-EU regions allowed: {regions}")
            expect(region == {"Ref": "AWS::Region"}, "EuRegionsOnly does not test AWS::Region")

    # Functions: runtime, architecture, least privilege.
    globals_ = template.get("Globals", {}).get("Function", {})
    expect(globals_.get("Runtime") == "provided.al2023", "runtime is not provided.al2023")
    expect(globals_.get("Architectures") == ["arm64"], "functions are not arm64")
    functions = resources_of(template, "AWS::Serverless::Function")
    expect(set(functions) == {"IngestFunction", "ConsentFunction", "ServeFunction", "PurgeFunction"},
           f"unexpected functions: {sorted(functions)}")
    for name, function in functions.items():
        metadata = template["Resources"][name].get("Metadata", {})
        expect(metadata.get("BuildMethod") == "rust-cargolambda", f"{name} is not built by cargo-lambda")
        expect(function.get("Role") is None, f"{name} brings its own role; use inline least-privilege policies")
        for policy in as_list(function.get("Policies", [])):
            expect(isinstance(policy, dict), f"{name} uses a managed policy {policy!r}; write the statements out")
        for statement in statements(function):
            for action in as_list(statement.get("Action", [])):
                expect("*" not in str(action), f"{name} allows a wildcard action {action}")
            for resource in as_list(statement.get("Resource", [])):
                expect(resource != "*", f"{name} allows an action on every resource")
            expect(statement.get("Effect") == "Allow", f"{name} has a statement that is not Allow")
            if any(str(a).startswith("kms:") for a in as_list(statement.get("Action", []))):
                expect("Condition" in statement, f"{name} uses KMS without a condition")

    kms = {name: actions(f, "kms") for name, f in functions.items()}
    expect(kms.get("ServeFunction") == {"kms:Decrypt", "kms:GenerateDataKey"},
           f"serve's KMS actions are {kms.get('ServeFunction')}")
    for statement in statements(functions.get("ServeFunction", {})):
        if "kms:GenerateDataKey" in as_list(statement.get("Action", [])):
            condition = statement.get("Condition", {}).get("StringEquals", {})
            expect(condition.get("kms:EncryptionContext:resultSet") == "Writebacks",
                   "serve can make data keys for more than write-back payloads")
    expect("kms:GenerateDataKey" in kms.get("IngestFunction", set()), "ingest cannot make data keys")
    expect(not kms.get("PurgeFunction"), "purge has KMS rights")
    for name, granted in kms.items():
        if name not in ("IngestFunction", "ConsentFunction", "ServeFunction"):
            expect("kms:GenerateDataKey" not in granted, f"{name} can make data keys")
    deleters = [n for n, f in functions.items() if "s3:DeleteObject" in actions(f)]
    expect("PurgeFunction" in deleters, "purge cannot delete objects")
    expect("ServeFunction" not in deleters, "serve can delete objects")
    expect(not actions(functions.get("ServeFunction", {}), "s3") - {"s3:GetObject"}, "serve does more than read objects")

    # Large uploads: ingest runs from the bucket's ObjectCreated events of incoming/ only.
    ingest_events = template["Resources"].get("IngestFunction", {}).get("Properties", {}).get("Events", {})
    s3_events = [e.get("Properties", {}) for e in ingest_events.values() if e.get("Type") == "S3"]
    expect(len(s3_events) == 1, "ingest is not notified of staged uploads")
    for event in s3_events:
        rules = event.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        expect({"Name": "prefix", "Value": "incoming/"} in rules, "ingest is notified outside incoming/")
        expect(str(event.get("Events", "")).startswith("s3:ObjectCreated"), "ingest hears more than ObjectCreated")
    routes = {(e["Properties"].get("Method"), e["Properties"].get("Path"))
              for e in ingest_events.values() if e.get("Type") == "HttpApi"}
    expect(("POST", "/agent/v1/uploads") in routes and ("GET", "/agent/v1/uploads/{id}") in routes,
           f"ingest's upload routes are missing: {sorted(routes)}")
    expect(("GET", "/agent/v1/tasks") in routes and ("POST", "/agent/v1/tasks/{id}/result") in routes,
           f"ingest's task routes are missing: {sorted(routes)}")
    expect(("GET", "/agent/v1/whoami") in routes and ("POST", "/agent/v1/health") in routes
           and ("GET", "/agent/v1/resultsets") in routes,
           f"ingest's whoami, resultsets or health route is missing: {sorted(routes)}")

    # The bucket.
    buckets = resources_of(template, "AWS::S3::Bucket")
    expect(len(buckets) == 1, "expected one bucket")
    for name, bucket in buckets.items():
        rules = bucket.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        expect(any(r.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") == "aws:kms"
                   and r.get("ServerSideEncryptionByDefault", {}).get("KMSMasterKeyID")
                   and r.get("BucketKeyEnabled") for r in rules), f"{name} is not SSE-KMS with a bucket key")
        block = bucket.get("PublicAccessBlockConfiguration", {})
        expect(all(block.get(k) is True for k in
                   ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")),
               f"{name} does not block public access")
        versioning = bucket.get("VersioningConfiguration", {}).get("Status")
        expect(versioning in (None, "Suspended"), f"{name} keeps deleted data as versions")
        lifecycle = bucket.get("LifecycleConfiguration", {}).get("Rules", [])
        expect(any(r.get("Status") == "Enabled" and r.get("ExpirationInDays") == 37 for r in lifecycle),
               f"{name} has no 37-day expiry backstop")
        expect(any(r.get("Status") == "Enabled" and r.get("Prefix") == "incoming/"
                   and r.get("ExpirationInDays") == 1 for r in lifecycle),
               f"{name} keeps staged uploads longer than a day")
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    tls_only = False
    for policy in policies.values():
        for statement in as_list(policy.get("PolicyDocument", {}).get("Statement", [])):
            condition = statement.get("Condition", {}).get("Bool", {})
            if statement.get("Effect") == "Deny" and condition.get("aws:SecureTransport") in ("false", False):
                tls_only = True
    expect(tls_only, "the bucket does not refuse plain HTTP")

    # The table.
    for name, table in resources_of(template, "AWS::DynamoDB::Table").items():
        ttl = table.get("TimeToLiveSpecification", {})
        expect(ttl.get("AttributeName") == "expires_at" and ttl.get("Enabled") is True, f"{name} has no TTL on expires_at")
        expect(table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True,
               f"{name} has no point-in-time recovery")
        sse = table.get("SSESpecification", {})
        expect(sse.get("SSEEnabled") is True and sse.get("SSEType") == "KMS" and sse.get("KMSMasterKeyId"),
               f"{name} is not encrypted with the customer key")

    # The key.
    keys = resources_of(template, "AWS::KMS::Key")
    expect(keys and all(k.get("EnableKeyRotation") is True for k in keys.values()), "the key does not rotate")

    expect("ApiUrl" in template.get("Outputs", {}), "no ApiUrl output")
    return problems


class NoManagedPolicies:
    def load(self):
        return {}


def references(value, names):
    """Every resource in `names` that `value` refers to (Ref, GetAtt, Sub)."""
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and inner in names:
                found.add(inner)
            elif key == "Fn::GetAtt":
                name = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                found |= {name} & names
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= set(re.findall(r"\$\{([A-Za-z0-9]+)", text)) & names
                if isinstance(inner, list):
                    found |= references(inner[1], names)
            else:
                found |= references(inner, names)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner, names)
    return found


def dependency_cycle(template):
    """A cycle among the resources SAM expands the template into, or None. cfn-lint does not
    see the one an S3 event makes (bucket -> permission -> function -> bucket)."""
    expanded = copy.deepcopy(template)
    for resource in expanded.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://placeholder/code.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-2")
    resources = transform(expanded, {}, NoManagedPolicies())["Resources"]
    names = set(resources)
    graph = {}
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        graph[name] = references(resource.get("Properties", {}), names) | set(as_list(depends))
    done = set()

    def visit(name, path):
        if name in path:
            return path[path.index(name):] + [name]
        if name in done:
            return None
        done.add(name)
        for target in sorted(graph.get(name, ())):
            cycle = visit(target, path + [name])
            if cycle:
                return cycle
        return None

    for name in sorted(graph):
        cycle = visit(name, [])
        if cycle:
            return cycle
    return None


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "template.yaml"
    template, matches = decode(path)
    if matches or template is None:
        print(f"{path} does not parse: {matches}")
        return 1
    problems = check(template)
    cycle = dependency_cycle(template)
    if cycle:
        problems.append("circular dependency: " + " -> ".join(cycle))
    for problem in problems:
        print(f"{path}: {problem}")
    if not problems:
        print(f"{path}: EU-only, least-privilege and data-protection properties hold")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
