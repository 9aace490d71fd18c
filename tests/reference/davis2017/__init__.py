from __future__ import absolute_import

__version__ = '0.1.0'
