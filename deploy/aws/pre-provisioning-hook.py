# AWS Lambda pre-provisioning hook for the kitd-fleet template (optional).
# AWS IoT calls it with the template's parameters before it creates
# anything; {"allowProvisioning": false} makes RegisterThing fail, and the
# kit logs the refusal and retries with backoff (readings are kept).
# This one allows only serials listed in the ALLOWED_SERIALS environment
# variable (comma separated); use a DynamoDB table for a real fleet.
import os


def handler(event, context):
    serial = event.get("parameters", {}).get("SerialNumber", "")
    allowed = {s.strip() for s in os.environ.get("ALLOWED_SERIALS", "").split(",") if s.strip()}
    return {"allowProvisioning": serial in allowed, "parameterOverrides": {}}
