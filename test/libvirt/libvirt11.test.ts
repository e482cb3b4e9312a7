import { libvirtSuite } from './suite.js';

libvirtSuite('libvirt11');
