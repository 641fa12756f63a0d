# Framework-free utilities shared by every other package. Imports nothing of ours.

from .util import (PACKAGES, EasyDict, atomic_path, atomic_write, call_func_by_name, construct_class_by_name, format_time,
                   get_obj_by_name, make_cache_dir_path, open_url)
