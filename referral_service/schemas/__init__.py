"""Every marshmallow schema of the service, in one package: what the API, the portal and the
importer accept, and how the API shapes what it returns. No Flask, no database."""
