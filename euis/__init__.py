"""The EU Information System edge: a client for the EUDR V3 SOAP services (Due Diligence
Statement and Verify Declaration), built with zeep from local WSDLs and the EU's schemas
(`wsdl/`), and the statuses of the statements filed through it (table dds_submissions).

Like every edge it translates at its boundary: SOAP responses become this package's frozen
types (model.py), SOAP faults and transport failures become the project's errors (errors.py).
"""
