import shutil, setuptools
from pathlib import Path
from configparser import ConfigParser
from setuptools.command.build_py import build_py

# nbdev 2 layout: all package metadata lives in settings.ini.
# (The classic template used pkg_resources, which current setuptools no longer ships.)
cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

expected = 'version description keywords author author_email'.split()
missing = [o for o in expected if o not in cfg]
if missing: raise ValueError(f"settings.ini is missing: {', '.join(missing)}")

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable', '6 - Mature', '7 - Inactive']
py_versions = '3.10 3.11 3.12'.split()

requirements = cfg.get('requirements', '').split()
extras = {name: cfg.get(f'{name}_requirements', '').split() for name in ('fast', 'onnx', 'cluster', 'serve', 'dev')}

class build_py_with_sample(build_py):
    "Ship data/sample inside the package (pintag/sample), so that an installed pintag has its default dataset."
    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False): return  # an editable install reads data/sample in place
        if Path('data/sample').is_dir(): shutil.copytree('data/sample', Path(self.build_lib)/'pintag'/'sample', dirs_exist_ok=True)
lic = licenses[cfg['license']]
min_python = cfg['min_python']
console_scripts = [o for o in cfg.get('console_scripts', '').split('\n') if o.strip()]

setuptools.setup(
    name=cfg['lib_name'],
    license=lic[0],
    classifiers=['Development Status :: ' + statuses[int(cfg['status'])],
                 'Intended Audience :: ' + cfg['audience'].title(),
                 'Natural Language :: ' + cfg['language'].title(),
                 'License :: ' + lic[1]] +
                ['Programming Language :: Python :: ' + o for o in py_versions[py_versions.index(min_python):]],
    url=cfg['git_url'],
    packages=setuptools.find_packages(include=['pintag', 'pintag.*']),
    include_package_data=True,
    package_data={'pintag': ['web/*.gz']},  # the docs' widget scripts (see pintag.docs.WIDGET_JS)
    install_requires=requirements,
    extras_require=extras,
    cmdclass={'build_py': build_py_with_sample},
    dependency_links=cfg.get('dep_links', '').split(),
    python_requires='>=' + min_python,
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    zip_safe=False,
    entry_points={'console_scripts': console_scripts, 'nbdev': [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"]},
    version=cfg['version'],
    description=cfg['description'],
    keywords=cfg['keywords'],
)
