import sys

from oci_reference.cli import main

sys.exit(main())
