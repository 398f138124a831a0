"""Direct DIAN integration: UBL 2.1 documents, CUFE, XAdES-EPES signature, zip packaging."""
